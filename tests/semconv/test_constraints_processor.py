"""The sidecar's semconv processor reports value-constraint violations, per
value (its shape cache keys on constrained values, as on enum values)."""
from __future__ import annotations

from opentelemetry.trace import SpanKind

from otelplug import codec
from otelplug.sidecar.processors import semconv
from otelplug.sidecar.semconvcheck.findings import FINDINGS_ATTRIBUTE
from otelplug.codec.recordset import RecordSet
from otelplug.sidecar.telemetry import Telemetry
from tests.sidecar.helpers import Capture, make, records_from_spans
from tests.sidecar.test_semconv_processor import spans_of

REGISTRY = """
    groups:
      - id: registry.app
        type: attribute_group
        brief: App attributes.
        attributes:
          - id: app.ratio
            type: double
            stability: development
            brief: A ratio.
            examples: [0.5]
            annotations: {otelplug: {constraints: {minimum: 0, maximum: 1}}}
          - id: app.name
            type: string
            stability: development
            brief: A name.
            examples: [abc]
            annotations: {otelplug: {constraints: {min_length: 1}}}
      - id: span.app.work
        type: span
        span_kind: internal
        stability: development
        brief: Work.
        attributes:
          - {ref: app.ratio, requirement_level: required}
          - {ref: app.name, requirement_level: required}
"""


def test_processor_reports_constraint_violations_value_by_value(make_registry):
    registry = make_registry({"app.yaml": REGISTRY})
    values = [(0.5, "a"), (1.7, "a"), (0.5, "a"), (1.7, "a"), (-1.0, ""), (0.25, "b")]
    spans = spans_of(*[("app.work", SpanKind.INTERNAL, {"app.ratio": r, "app.name": n}) for r, n in values])
    tel = Telemetry()
    cap = Capture()
    p = make(semconv.factory, {"registry": registry, "actions": {"violation": "annotate"}}, cap, telemetry=tel)
    p.consume(records_from_spans(spans))
    out = RecordSet.concat(cap.got)
    got = [set(codec.decode_span(b).attributes.get(FINDINGS_ATTRIBUTE, ())) for b in out.payloads()]
    assert got == [set(), {"value_out_of_range:app.ratio"}, set(), {"value_out_of_range:app.ratio"},
                   {"value_out_of_range:app.ratio", "string_length_out_of_range:app.name"}, set()]
    fam = tel.get("semconv_findings")
    counts = {dict(zip(("component", "id", "level", "signal", "attribute_or_metric"), k))["id"]: v
              for k, v in fam.samples() if v}
    assert counts["value_out_of_range"] == 3 and counts["string_length_out_of_range"] == 1


def test_valid_constrained_values_share_one_cache_entry(make_registry):
    """Continuous values (a ratio, a duration) must not fill the shape cache:
    past ``max_variants`` every item would be checked uncached."""
    registry = make_registry({"app.yaml": REGISTRY})
    spans = spans_of(*[("app.work", SpanKind.INTERNAL, {"app.ratio": i / 100, "app.name": "a"}) for i in range(50)],
                     ("app.work", SpanKind.INTERNAL, {"app.ratio": 2.5, "app.name": "a"}))
    tel = Telemetry()
    cap = Capture()
    p = make(semconv.factory, {"registry": registry, "actions": {"violation": "annotate"}, "max_variants": 4},
             cap, telemetry=tel)
    p.consume(records_from_spans(spans))
    out = RecordSet.concat(cap.got)
    got = [set(codec.decode_span(b).attributes.get(FINDINGS_ATTRIBUTE, ())) for b in out.payloads()]
    assert got == [set()] * 50 + [{"value_out_of_range:app.ratio"}]
    uncached = tel.get("semconv_uncached_checks")
    assert sum(v for _k, v in uncached.samples()) == 0
