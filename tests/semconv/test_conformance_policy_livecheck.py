"""Weaver's compatibility-policy, live-check and parser fixtures."""
from __future__ import annotations

import json
import os

import pytest

from otelplug.semconv import SemconvError, load_registry, resolve_registry
from otelplug.semconv.compat import check_compatibility
from otelplug.semconv.livecheck import LiveChecker
from otelplug.semconv.samples import check_samples, read_samples
from otelplug.semconv.stats import LiveCheckStats

from semconv_testdata import WEAVER_TESTS, require

COMPAT = WEAVER_TESTS / "policy" / "backwards-compatibility"
LIVE = WEAVER_TESTS / "live-check"
PARSE = WEAVER_TESTS / "semconv-parse"


def _listdir(path, suffix=""):
    if not path.exists():
        return ["<missing shared data>"]
    return sorted(n for n in os.listdir(path) if n.endswith(suffix))


@pytest.mark.parametrize("case", _listdir(COMPAT))
def test_backward_compatibility_policy_case(case):
    case_dir = require(COMPAT / case)
    expected = json.loads((case_dir / "expected-diagnostic-output.json").read_text())
    want = sorted(
        (v["id"], json.dumps(v["context"], sort_keys=True), v["signal_type"], v["signal_name"], v["level"])
        for v in (e["error"]["violation"] for e in expected))
    findings = check_compatibility(resolve_registry(str(case_dir / "base")),
                                   resolve_registry(str(case_dir / "current")))
    got = sorted((f.id, json.dumps(f.context, sort_keys=True), f.signal_type, f.signal_name, f.level)
                 for f in findings)
    assert got == want


def test_compatibility_messages_match_upstream():
    case_dir = require(COMPAT / "metrics")
    expected = {e["error"]["violation"]["message"]
                for e in json.loads((case_dir / "expected-diagnostic-output.json").read_text())}
    findings = check_compatibility(resolve_registry(str(case_dir / "base")),
                                   resolve_registry(str(case_dir / "current")))
    assert {f.message for f in findings} == expected


SAMPLE_FILES = _listdir(LIVE, ".json")


#: The findings above information level that Weaver's advisors give for each
#: sample file against upstream main, worked out from the samples and the
#: registry's YAML (not recorded from otelplug's output): (finding id, the
#: attribute, event or metric it is about).  Information-level findings
#: (not_stable, ...) follow each definition's stability and are left out.
EXPECTED_FINDINGS = {
    "attributes.json": {
        ("type_mismatch", "http.response.status_code"),    # "200" is a string, the registry says int
        ("missing_attribute", "task.id"),                  # in no registry
        ("missing_attribute", "TaskId"),
        ("missing_namespace", "TaskId"),                   # no dot at all
        ("invalid_format", "TaskId"),                      # not snake_case
        ("type_mismatch", "exception.message"),            # string[] given, string defined
        ("missing_attribute", "http.request.method.not.allowed"),
        ("illegal_namespace", "http.request.method.not.allowed"),  # its namespace is an attribute
        ("missing_attribute", "http.request.extension"),
        ("type_mismatch", "http.request.header.content.type"),     # the template is string[]
    },
    "span.json": {
        ("type_mismatch", "http.response.status_code"),    # "foo"
        ("missing_attribute", "aws.s3.bucket.name"),
        ("illegal_namespace", "aws.s3.bucket.name"),       # aws.s3.bucket is an attribute
        ("missing_attribute", "task.id"),
        ("missing_attribute", "TaskId"), ("missing_namespace", "TaskId"), ("invalid_format", "TaskId"),
        ("missing_attribute", "aws.s3.extension.name"),
        ("missing_attribute", "hello"), ("missing_namespace", "hello"),    # on the span event and link
        ("missing_event", "test_event"),
    },
    "logs.json": {
        ("missing_attribute", "session.idd"),              # a typo of session.id
        ("required_attribute_not_present", "session.id"),  # required by the session.start event
        ("missing_event", "session.test"),
        ("missing_event", "example.event"),
    },
    "metrics.json": {
        ("deprecated", "state"),                           # renamed to system.memory.state
        ("recommended_attribute_not_present", "system.memory.state"),
        ("deprecated", "rpc.client.duration"),
        ("required_attribute_not_present", "rpc.system.name"),
        ("missing_metric", "otelcol_process_memory_rss"),  # the Collector's own, not in semconv
        ("missing_metric", "otelcol_process_runtime_total_alloc_bytes"),
    },
    "metrics_with_res.json": set(),                        # process.cpu.time, all defined
    "entity_associations.json": {
        ("missing_event", "thing.happened"),               # only the small model defines it
        ("missing_attribute", "tenant.id"),
    },
}


def _subject(finding) -> str:
    c = finding.context
    return c.get("attribute_key") or c.get("event_name") or c.get("metric_name") or finding.signal_name


@pytest.mark.parametrize("sample_file", SAMPLE_FILES)
def test_live_check_samples_against_upstream(sample_file, upstream):
    registry = upstream("main")
    samples = read_samples(str(require(LIVE / sample_file)))
    assert samples, "sample file parsed to nothing"
    stats = LiveCheckStats(registry)
    findings = check_samples(LiveChecker(registry, stats), samples)
    assert stats.to_dict()["total_advisories"] == len(findings)
    above_information = {(f.id, _subject(f)) for f in findings if f.level != "information"}
    assert sample_file in EXPECTED_FINDINGS, "a new sample file: work out its expected findings"
    assert above_information == EXPECTED_FINDINGS[sample_file]


def test_live_check_span_sample_findings(upstream):
    registry = upstream("main")
    findings = check_samples(LiveChecker(registry), read_samples(str(require(LIVE / "span.json"))))
    by_key = {(f.id, f.context.get("attribute_key") or f.context.get("event_name")) for f in findings}
    assert ("type_mismatch", "http.response.status_code") in by_key      # "foo" is not an int
    assert ("illegal_namespace", "aws.s3.bucket.name") in by_key         # aws.s3.bucket is an attribute
    assert ("missing_namespace", "TaskId") in by_key
    assert ("invalid_format", "TaskId") in by_key
    assert ("missing_event", "test_event") in by_key
    assert ("missing_attribute", "http.request.method") not in by_key


def test_live_check_model_metrics():
    model = require(LIVE / "model" / "metrics")
    registry = resolve_registry(str(model))
    findings = check_samples(LiveChecker(registry), read_samples(str(LIVE / "metrics.json")))
    ids = {(f.id, f.signal_name) for f in findings}
    undefined = [f.context["attribute_value"] for f in findings if f.id == "undefined_enum_variant"]
    assert undefined == ["inactive"]                                    # used/free are members
    assert ("missing_attribute", "system.memory.usage") in ids          # bare 'state'
    assert ("missing_metric", "system.memory.usage") not in ids
    assert ("missing_metric", "rpc.client.duration") in ids


def test_live_check_entity_association_model():
    registry = resolve_registry(str(require(LIVE / "model" / "entity_associations")))
    findings = check_samples(LiveChecker(registry), read_samples(str(LIVE / "entity_associations.json")))
    assert not any(f.id == "missing_event" for f in findings)  # thing.happened is defined


@pytest.mark.parametrize("name", _listdir(PARSE, ".yaml"))
def test_semconv_parse_valid_files(name):
    registry = resolve_registry_file(require(PARSE / name))
    assert registry.groups


def resolve_registry_file(path):
    """A single file may ref attributes defined in sibling files; load it
    alone and only require that parsing succeeds without errors."""
    loaded = load_registry(str(path))
    return loaded


@pytest.mark.parametrize("name", _listdir(PARSE / "invalid", ".yaml"))
def test_semconv_parse_invalid_files_are_reported(name):
    path = require(PARSE / "invalid" / name)
    try:
        loaded = load_registry(str(path))
        diagnostics = loaded.warnings
    except SemconvError as exc:
        diagnostics = exc.diagnostics
    assert diagnostics, f"{name} must be reported"
    for diag in diagnostics:
        assert diag.path == str(path) and diag.line


def test_missing_brief_is_an_error():
    path = require(PARSE / "invalid" / "invalid-semconv.yaml")
    with pytest.raises(SemconvError) as info:
        load_registry(str(path))
    assert "InvalidSemConvSpec" in info.value.kinds
    assert "brief" in str(info.value)
