"""Live-check findings, span/event matching and statistics."""
from __future__ import annotations

import pytest

from otelplug.semconv.livecheck import LiveChecker, highest_level, infer_type, types_compatible
from otelplug.semconv.stats import LiveCheckStats

REGISTRY = """
groups:
  - id: registry.app
    type: attribute_group
    brief: App attributes.
    attributes:
      - id: app.user
        type: string
        stability: stable
        brief: User.
        examples: ["u"]
      - id: app.count
        type: int
        stability: stable
        brief: Count.
      - id: app.ratio
        type: double
        stability: development
        brief: Ratio.
      - id: app.mode
        type:
          members:
            - {id: fast, value: fast, stability: stable}
            - {id: slow, value: slow, stability: stable}
        stability: stable
        brief: Mode.
      - id: app.old
        type: string
        stability: development
        brief: Old.
        examples: ["o"]
        deprecated: {reason: renamed, renamed_to: app.user}
      - id: app.header
        type: template[string]
        stability: stable
        brief: Headers.
        examples: ["h"]
  - id: span.app.request
    type: span
    span_kind: server
    stability: stable
    brief: A request.
    attributes:
      - ref: app.user
        requirement_level: required
      - ref: app.count
        requirement_level: recommended
      - ref: app.mode
        requirement_level: opt_in
      - ref: app.ratio
        requirement_level:
          conditionally_required: when known
  - id: event.app.retry
    type: event
    name: app.retry
    stability: stable
    brief: A retry.
    attributes:
      - ref: app.count
        requirement_level: required
  - id: metric.app.requests
    type: metric
    metric_name: app.requests
    stability: stable
    brief: Requests.
    instrument: counter
    unit: "{request}"
    attributes:
      - ref: app.mode
        requirement_level: required
"""


@pytest.fixture
def checker(resolve):
    registry = resolve({"a.yaml": REGISTRY})
    return LiveChecker(registry, LiveCheckStats(registry))


def ids(findings):
    return {(f.id, f.context.get("attribute_key")) for f in findings}


def test_attribute_findings(checker):
    assert checker.check_attribute("app.user", "alice") == []
    assert ids(checker.check_attribute("app.count", "3")) == {("type_mismatch", "app.count")}
    assert checker.check_attribute("app.ratio", 1)[0].id == "not_stable"  # int is fine for double
    f = {x.id: x for x in checker.check_attribute("app.old", "x")}
    assert f["deprecated"].level == "violation" and f["deprecated"].context["deprecation_reason"] == "renamed"
    assert "not_stable" not in f  # a deprecated attribute is reported once (issue 16 #10)
    assert ids(checker.check_attribute("app.mode", "turbo")) == {("undefined_enum_variant", "app.mode")}
    assert ids(checker.check_attribute("app.mode", True)) == {("type_mismatch", "app.mode")}
    tmpl = checker.check_attribute("app.header.accept", "json")
    assert [(x.id, x.level, x.context["template"]) for x in tmpl] == [("template_attribute", "information", "app.header")]
    assert ids(checker.check_attribute("app.header.accept", 3)) == {("template_attribute", "app.header.accept"),
                                                                    ("type_mismatch", "app.header.accept")}


def test_unknown_attribute_naming_policy(checker):
    assert {(x.id, x.level) for x in checker.check_attribute("Bad-Name", "v")} == {
        ("missing_attribute", "violation"), ("missing_namespace", "improvement"), ("invalid_format", "violation")}
    assert ("illegal_namespace", "app.user.id") in ids(checker.check_attribute("app.user.id", "v"))
    extends = checker.check_attribute("app.other", "v")
    assert {x.id for x in extends} == {"missing_attribute", "extends_namespace"}
    assert extends[1].context["namespace"] == "app"


def test_span_matched_to_definition(checker):
    findings = checker.check_span("app.request", "client", {"app.count": 2, "app.extra": "x"},
                                  events=[{"name": "app.retry", "attributes": {}},
                                          {"name": "app.unknown", "attributes": {"app.count": 1}}])
    got = {(f.id, f.level, f.context.get("attribute_key") or f.context.get("event_name") or f.context.get("span_kind"))
           for f in findings}
    assert got == {
        ("missing_attribute", "violation", "app.extra"),
        ("extends_namespace", "information", "app.extra"),
        ("unexpected_span_kind", "violation", "client"),
        ("required_attribute_not_present", "violation", "app.user"),
        ("opt_in_attribute_not_present", "information", "app.mode"),
        ("conditionally_required_attribute_not_present", "information", "app.ratio"),
        ("required_attribute_not_present", "violation", "app.count"),  # from the app.retry event
        ("missing_event", "violation", "app.unknown"),
    }
    # span definitions are also found by group id; unknown span names are not findings
    assert checker.match_span("span.app.request").id == "span.app.request"
    assert checker.check_span("GET /index", "server", {"app.user": "u"}) == []


def test_metric_checks(checker):
    findings = checker.check_metric("app.requests", "gauge", "s", [{"app.mode": "fast"}, {}])
    assert {(f.id, f.sample_type) for f in findings} == {
        ("unexpected_instrument", "metric"), ("unit_mismatch", "metric"),
        ("required_attribute_not_present", "data_point")}
    assert [f.id for f in checker.check_metric("app.requests", "summary", "{request}")] == ["unexpected_instrument"]
    missing = checker.check_metric("App.Unknown", "counter", "1")
    assert [f.id for f in missing] == ["missing_metric", "invalid_format"]
    assert checker.check_metric("app.requests", "counter", "{request}", [{"app.mode": "slow"}]) == []


def test_log_event_checks(checker):
    assert [f.id for f in checker.check_log("app.retry", {})] == ["required_attribute_not_present"]
    assert [f.id for f in checker.check_log("nope.event", {})] == ["missing_event"]
    assert checker.check_log(None, {"app.user": "u"}) == []


def test_resource_and_list_attributes(checker):
    findings = checker.check_resource([{"name": "app.count", "value": "7", "type": "int"}])
    assert findings == []  # declared type wins over the JSON value
    assert checker.check_resource([{"name": "app.count", "value": 7, "type": "string"}])[0].id == "type_mismatch"


def test_statistics(checker):
    checker.check_span("app.request", "server", {"app.user": "u", "app.count": 1, "app.mode": "fast",
                                                  "app.ratio": 0.5})
    checker.check_metric("app.requests", "counter", "{request}", [{"app.mode": "fast"}])
    checker.check_metric("other.metric", "counter", "1")
    checker.check_log("app.retry", {"app.count": 2})
    stats = checker.stats.to_dict()
    assert stats["total_entities_by_type"] == {"attribute": 6, "data_point": 1, "log": 1, "metric": 2, "span": 1}
    assert stats["advice_type_counts"] == {"missing_metric": 1, "not_stable": 1}
    assert stats["advice_level_counts"] == {"information": 1, "violation": 1}
    assert stats["highest_advice_level_counts"] == {"information": 1, "violation": 1}
    assert stats["no_advice_count"] == 9
    assert stats["seen_registry_attributes"]["app.mode"] == 2
    assert stats["seen_non_registry_metrics"] == {"other.metric": 1}
    assert stats["coverage_by_signal"]["attributes"] == {"seen": 4, "total": 6, "coverage": 4 / 6}
    assert stats["coverage_by_signal"]["metrics"]["coverage"] == 1.0
    assert stats["coverage_by_signal"]["spans"]["seen"] == 1
    assert stats["coverage_by_namespace"]["app"]["seen"] == 4
    assert stats["registry_coverage"] == 4 / 6


def test_type_helpers():
    assert infer_type([1, 2]) == "int[]" and infer_type([1, 2.5]) == "double[]"
    assert infer_type(True) == "boolean" and infer_type({"a": 1}) is None
    assert types_compatible("int", "double") and not types_compatible("double", "int")
    assert types_compatible(None, "string[]")
    assert highest_level([]) is None
