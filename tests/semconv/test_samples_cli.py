"""Sample readers (Weaver JSON, OTLP-JSON) and the ``otelplug semconv`` CLI."""
from __future__ import annotations

import json

import pytest

from otelplug.cli.main import main
from otelplug.semconv.samples import SampleError, parse_samples_text

from semconv_testdata import PROJECT_ROOT, UPSTREAM, WEAVER_TESTS, require

OTLP_TRACES = {
    "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"spans": [{
            "name": "inference.batch", "kind": 1,
            "attributes": [{"key": "otelplug.demo.batch_size", "value": {"intValue": "16"}},
                           {"key": "otelplug.demo.gpu.id", "value": {"intValue": "42"}},
                           {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}],
            "events": [{"name": "otelplug.demo.item",
                        "attributes": [{"key": "otelplug.demo.kind", "value": {"stringValue": "gpu"}}]}],
        }]}],
    }]
}
OTLP_METRICS = {"resourceMetrics": [{"resource": {}, "scopeMetrics": [{"metrics": [
    {"name": "otelplug_exporter_sent_spans", "unit": "{span}",
     "sum": {"isMonotonic": True, "dataPoints": [
         {"attributes": [{"key": "exporter", "value": {"stringValue": "otlp"}}], "asInt": "3"}]}},
    {"name": "otelplug_process_memory_rss", "unit": "By", "gauge": {"dataPoints": [{"asDouble": 1.0}]}},
]}]}]}
OTLP_LOGS = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [
    {"eventName": "otelplug.demo.item",
     "attributes": [{"key": "otelplug.demo.kind", "value": {"stringValue": "job"}},
                    {"key": "otelplug.demo.error", "value": {"boolValue": False}}]},
    {"attributes": [{"key": "event.name", "value": {"stringValue": "otelplug.demo.other"}}]},
]}]}]}


def test_otlp_json_documents_and_json_lines():
    samples = parse_samples_text(json.dumps(OTLP_TRACES))
    assert [s.kind for s in samples] == ["resource", "span"]
    span = samples[1]
    assert span.span_kind == "internal" and span.events[0]["name"] == "otelplug.demo.item"
    assert ("otelplug.demo.gpu.id", 42, "int") in span.attributes
    assert ("tags", ["a"], "string[]") in span.attributes
    lines = "\n".join(json.dumps(d) for d in (OTLP_METRICS, OTLP_LOGS))
    samples = parse_samples_text(lines)
    metrics = [s for s in samples if s.kind == "metric"]
    assert [(m.name, m.instrument) for m in metrics] == [("otelplug_exporter_sent_spans", "counter"),
                                                          ("otelplug_process_memory_rss", "gauge")]
    logs = [s for s in samples if s.kind == "log"]
    assert [log.name for log in logs] == ["otelplug.demo.item", "otelplug.demo.other"]


@pytest.mark.parametrize("text,where", [
    ('[{"span": {}}, {"nonsense": {}}]', "sample #1"),
    ('{"a": 1}', "not a Weaver sample"),
    ('[1, 2', "<input>:1"),
    ('{"resourceSpans": []}\n{"bad json', "<input>:2"),
])
def test_bad_samples_are_located(text, where):
    with pytest.raises(SampleError) as info:
        parse_samples_text(text)
    assert where in str(info.value)


# ------------------------------------------------------------------ CLI

def run(capsys, *argv):
    code = main(["semconv", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


PROJECT_REGISTRY = str(PROJECT_ROOT / "semconv")


def test_project_registry_checks_clean(capsys):
    code, out, _err = run(capsys, "check", PROJECT_REGISTRY)
    assert code == 0 and out.startswith("OK:")
    code, out, _err = run(capsys, "check", PROJECT_REGISTRY, "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["summary"]["errors"] == 0 and report["warnings"] == []


def test_project_registry_content():
    """The registry's naming policy, exactly.  Which metrics it declares is
    checked against a running sidecar in test_own_telemetry.py."""
    from otelplug.semconv import resolve_registry
    reg = resolve_registry(PROJECT_REGISTRY)
    # self-metric labels: the Collector's un-namespaced names, as exposed
    labels = {"receiver", "transport", "exporter", "processor", "component", "otel_signal", "record_type",
              "channel", "pid", "reason", "policy", "sampled", "action", "id", "level", "signal",
              "attribute_or_metric", "kind", "namespace", "type", "version", "implementation",
              "holder"}
    # otelplug's own attributes (span/log annotations, the demo adapters)
    own = {"otelplug.semconv.findings", "otelplug.semconv.level", "otelplug.demo.kind", "otelplug.demo.error",
           "otelplug.demo.outcome", "otelplug.demo.batch_size", "otelplug.demo.gpu.id"}
    # upstream attributes otelplug's telemetry uses, declared here (no upstream dependency)
    upstream = {"otel.component.type", "otel.component.name", "error.type", "hw.id"}
    # the adapter telemetry contract (contract.yaml): its own namespaces
    contract = {n for n in reg.attributes if n.split(".")[0] in (
        "adapter", "usage", "processing", "consensus", "memory", "performance", "model", "generation", "token",
        "runtime")}
    assert len(contract) == 47
    assert set(reg.attributes) == labels | own | upstream | contract
    assert all(reg.attributes[n].stability == "development" for n in reg.attributes)
    assert all(n.startswith("otelplug.") for n in own)
    own_metrics = {n for n in reg.metrics if n.startswith("otelplug_")}
    assert set(reg.metrics) - own_metrics == {
        "demo.requests", "demo.duration", "demo.inflight", "demo.gpu.utilization",
        "otel.sdk.processor.span.processed", "otel.sdk.processor.log.processed"}
    for name in own_metrics:
        metric = reg.metrics[name]
        assert metric.stability == "development" and metric.get("brief"), name
        assert metric.get("instrument") in ("counter", "gauge"), name     # what Prometheus text carries
        assert metric.get("unit"), name
        # every label is always there: required, and nothing else
        assert {a.name for a in metric.attributes} <= labels, name
        assert {a.requirement_level for a in metric.attributes} <= {"required"}, name
    assert reg.metrics["otelplug_exporter_sent_spans"].attribute("exporter").requirement_level == "required"
    assert set(reg.events) - {"otelplug.demo.item"} == {g.signal_name for g in reg.of_type("event")
                                                         if g.path.endswith("contract.yaml")}
    assert {g.id for g in reg.of_type("span")} == {"span.inference.batch"}


def test_resolve_json_and_yaml(capsys):
    import yaml
    code, out, _ = run(capsys, "resolve", PROJECT_REGISTRY)
    groups = {g["id"]: g for g in json.loads(out)["groups"]}
    assert code == 0
    metric = groups["metric.otelplug_exporter_queue_size"]
    assert (metric["metric_name"], metric["instrument"], metric["unit"]) == ("otelplug_exporter_queue_size", "gauge", "{batch}")
    attr = metric["attributes"][0]
    assert {"name", "type", "requirement_level", "stability", "brief", "examples"} <= set(attr)
    assert groups["span.inference.batch"]["span_kind"] == "internal"
    assert groups["event.otelplug.demo.item"]["name"] == "otelplug.demo.item"
    code, out, _ = run(capsys, "resolve", PROJECT_REGISTRY, "--format", "yaml")
    assert code == 0 and "&id" not in out and yaml.safe_load(out)["registry"]["name"] == "otelplug"


def test_check_reports_errors_with_location(capsys, make_registry):
    path = make_registry({"bad.yaml": "groups:\n  - id: g\n    type: attribute_group\n    brief: G.\n"
                                      "    attributes:\n      - ref: missing.attr\n"})
    code, out, _ = run(capsys, "check", path)
    assert code == 1
    assert f"{path}/bad.yaml:6: error: UnresolvedAttributeRef" in out
    code, out, _ = run(capsys, "resolve", path)
    assert code == 1


def test_check_with_baseline(capsys, make_registry):
    base = make_registry({"a.yaml": "groups:\n  - id: r\n    type: attribute_group\n    brief: R.\n    attributes:\n"
                                    "      - id: r.a\n        type: int\n        stability: stable\n        brief: A.\n"})
    head = make_registry({"a.yaml": "groups:\n  - id: r\n    type: attribute_group\n    brief: R.\n    attributes:\n"
                                    "      - id: r.b\n        type: int\n        stability: stable\n        brief: B.\n"})
    code, out, _ = run(capsys, "check", head, "--baseline", base, "--format", "json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert [f["id"] for f in report["compatibility"]] == ["compatibility_removed_attribute"]
    code, out, _ = run(capsys, "diff", base, head, "--format", "json")
    changes = json.loads(out)["changes"]["attributes"]
    assert code == 0 and changes["added"] == [{"name": "r.b"}] and changes["removed"] == [{"name": "r.a"}]
    code, out, _ = run(capsys, "diff", base, head, "--format", "markdown")
    assert "### Removed (1)" in out


def test_live_check_cli(capsys, tmp_path, monkeypatch):
    good = tmp_path / "good.json"
    clean = {"resourceLogs": [{"scopeLogs": [{"logRecords": OTLP_LOGS["resourceLogs"][0]["scopeLogs"][0]["logRecords"][:1]}]}]}
    good.write_text(json.dumps(clean))
    code, out, _ = run(capsys, "live-check", "--registry", PROJECT_REGISTRY, "--input", str(good))
    # only not_stable (information): everything in the registry is in development
    assert code == 0 and "OK: highest level information" in out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"metric": {"name": "otelplug_ring_dropped_records", "instrument": "counter",
                                           "unit": "{record}", "data_points": [{"attributes": [
                                               {"name": "channel", "value": "default"}]}]}}]))
    code, out, _ = run(capsys, "live-check", "--registry", PROJECT_REGISTRY, "--input", str(bad), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["highest_level"] == "violation"
    assert {(f["id"], f["context"].get("attribute_key")) for f in report["findings"]} == {
        ("unexpected_instrument", None), ("not_stable", None), ("not_stable", "channel"),
        ("required_attribute_not_present", "pid"), ("required_attribute_not_present", "reason")}
    assert report["statistics"]["total_entities_by_type"]["metric"] == 1
    code, _out, _ = run(capsys, "live-check", "--registry", PROJECT_REGISTRY, "--input", str(bad), "--fail-on", "none")
    assert code == 0
    code, _out, _ = run(capsys, "live-check", "--registry", PROJECT_REGISTRY, "--input", str(good),
                        "--fail-on", "information")
    assert code == 1
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(OTLP_TRACES)))
    code, out, _ = run(capsys, "live-check", "--registry", PROJECT_REGISTRY, "--input", "-")
    assert code == 1 and "missing_attribute" in out and "service.name" in out


def test_cli_bad_inputs_never_traceback(capsys, tmp_path):
    code, _out, err = run(capsys, "live-check", "--registry", PROJECT_REGISTRY, "--input", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read input" in err
    broken = tmp_path / "broken.json"
    broken.write_text('[{"span": {"name": "x"}},\n oops]')
    code, _out, err = run(capsys, "live-check", "--registry", PROJECT_REGISTRY, "--input", str(broken))
    assert code == 2 and f"{broken}:2" in err
    code, _out, err = run(capsys, "live-check", "--registry", str(tmp_path / "missing"), "--input", str(broken))
    assert code == 1 and "RegistryNotFound" in err
    code, _out, err = run(capsys, "check", str(tmp_path / "missing"))
    assert code == 1


def test_cli_on_upstream_samples(capsys):
    registry = str(require(UPSTREAM / "main"))
    sample = str(require(WEAVER_TESTS / "live-check" / "span.json"))
    code, out, _ = run(capsys, "live-check", "--registry", registry, "--input", sample, "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["statistics"]["advice_type_counts"]["missing_attribute"] == 6
    code, out, _ = run(capsys, "check", str(UPSTREAM / "v1.43.0"), "--baseline", str(UPSTREAM / "v1.42.0"))
    assert code == 1 and "compatibility_entity_missing" in out


def test_console_entry_point_has_semconv(capsys):
    with pytest.raises(SystemExit) as info:
        main(["semconv", "--help"])
    assert info.value.code == 0
    assert "live-check" in capsys.readouterr().out
