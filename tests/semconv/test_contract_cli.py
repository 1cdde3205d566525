"""``otelplug contract``: samples, report and compatibility check, with the
exit codes a CI job relies on."""
from __future__ import annotations

import json
import shutil

import pytest

from otelplug.cli.main import main

from semconv_testdata import PROJECT_ROOT

REGISTRY = str(PROJECT_ROOT / "semconv")


@pytest.fixture(scope="module")
def samples_text(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples") / "samples.jsonl"
    assert main(["contract", "samples", "--registry", REGISTRY, "--output", str(out)]) == 0
    return out.read_text()


def _report(tmp_path, text, capsys):
    samples = tmp_path / "samples.jsonl"
    samples.write_text(text)
    output = tmp_path / "contract_report.json"
    code = main(["contract", "report", "--registry", REGISTRY, "--samples", str(samples), "--output", str(output)])
    return code, json.loads(output.read_text()), capsys.readouterr().out


def test_samples_are_json_lines_and_the_report_on_them_is_clean(samples_text, tmp_path, capsys):
    lines = samples_text.splitlines()
    docs = [json.loads(line) for line in lines]  # each line on its own is valid JSON
    names = {d["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["eventName"] for d in docs}
    assert {"adapter.started", "consensus.proposed", "performance.checkpoint", "model.invalidated",
            "token.generated", "runtime.status"} <= names
    code, report, out = _report(tmp_path, samples_text, capsys)
    assert code == 0, out
    assert report["all_adapters_valid"] is True and report["unused_events"] == []
    assert sorted(report["adapters"]) == ["cma_geodesic", "consensus_engine", "gpu_kernel:jones_plassmann",
                                          "info_geometry", "neuromorphic", "orchestrator", "quantum_pimc",
                                          "thermodynamic"]
    assert report["total_events"] == len(lines) == 8 * len(names)
    assert "all adapters valid" in out


def _edit(samples_text, event, component, change):
    """Apply ``change(record, resource_attributes)`` to one sample line."""
    out = []
    for line in samples_text.splitlines():
        doc = json.loads(line)
        rl = doc["resourceLogs"][0]
        record = rl["scopeLogs"][0]["logRecords"][0]
        if record["eventName"] == event and {"key": "adapter.component", "value": {"stringValue": component}} in \
                rl["resource"]["attributes"]:
            change(record, rl["resource"]["attributes"])
        out.append(json.dumps(doc))
    return "\n".join(out) + "\n"


def _set(record, key, value):
    for kv in record["attributes"]:
        if kv["key"] == key:
            kv["value"] = value


def test_report_names_each_broken_event_per_adapter(samples_text, tmp_path, capsys):
    text = _edit(samples_text, "consensus.proposed", "consensus_engine",
                 lambda r, _res: _set(r, "consensus.confidence", {"doubleValue": 1.7}))
    text = _edit(text, "processing.completed", "thermodynamic",
                 lambda r, _res: r.__setitem__("attributes", [kv for kv in r["attributes"]
                                                              if kv["key"] != "processing.colors_used"]))
    text = _edit(text, "adapter.stopped", "orchestrator", lambda r, _res: r.__setitem__("eventName", "adapter.paused"))
    text = _edit(text, "adapter.started", "neuromorphic", lambda _r, res: res.clear())
    code, report, out = _report(tmp_path, text, capsys)
    assert code == 1
    assert report["all_adapters_valid"] is False
    adapters = report["adapters"]
    assert {n for n, a in adapters.items() if not a["valid"]} == {
        "consensus_engine", "thermodynamic", "orchestrator", "<no identity>"}
    bad = adapters["consensus_engine"]["events"]["consensus.proposed"]
    assert bad["valid"] is False and bad["findings"] == {"value_out_of_range": 1}
    assert bad["examples"][0]["message"] == "consensus.proposed: confidence must be between 0 and 1, got 1.7"
    assert adapters["consensus_engine"]["events"]["consensus.reached"]["valid"] is True
    assert adapters["thermodynamic"]["events"]["processing.completed"]["findings"] == {
        "required_attribute_not_present": 1}
    assert adapters["orchestrator"]["events"]["adapter.paused"]["findings"] == {"missing_event": 1}
    assert [f["id"] for f in adapters["<no identity>"]["resource_findings"]] == ["missing_identity"]
    assert "FAIL consensus.proposed: 1 of 1 invalid" in out
    assert "confidence must be between 0 and 1, got 1.7" in out


@pytest.mark.parametrize("text,code", [("", 1), ("{not json\n", 2), ('{"resourceSpans": []}\n', 2)])
def test_report_exit_codes_for_no_events_and_bad_input(tmp_path, capsys, text, code):
    samples = tmp_path / "s.jsonl"
    samples.write_text(text)
    assert main(["contract", "report", "--registry", REGISTRY, "--samples", str(samples),
                 "--output", str(tmp_path / "r.json")]) == code
    if code == 2:
        assert "s.jsonl:1" in capsys.readouterr().err


def test_check_detects_compatibility_breaks(tmp_path, capsys):
    baseline = tmp_path / "baseline"
    shutil.copytree(REGISTRY, baseline)
    assert main(["contract", "check", REGISTRY, "--baseline", str(baseline)]) == 0
    capsys.readouterr()
    current = tmp_path / "current"
    shutil.copytree(REGISTRY, current)
    contract = current / "contract.yaml"
    text = contract.read_text()
    start = text.index("  - id: event.memory.pressure")
    end = text.index("  - id: event.performance.checkpoint")
    contract.write_text(text[:start] + text[end:])
    assert main(["contract", "check", str(current), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert ("violation: compatibility_event_removed: Event 'memory.pressure' no longer exists in semantic "
            "conventions (where the baseline defined it)") in out
    assert f"{baseline}/contract.yaml:" in out
