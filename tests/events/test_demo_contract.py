"""End to end: the demo's adapters emit contract events through the
generated emitter, into their rings; the sidecar exports them as OTLP-JSON;
``otelplug contract report`` on that file finds every adapter valid."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from events_testdata import PROJECT_ROOT


def _cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(PROJECT_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.run([sys.executable, "-m", "otelplug.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=PROJECT_ROOT)


def test_demo_events_pass_the_contract_report(tmp_path):
    out = tmp_path / "out"
    res = _cli("demo", "--seconds", "1", "--adapters", "3", "--rate", "100", "--output", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    report_path = tmp_path / "contract_report.json"
    res = _cli("contract", "report", "--registry", "semconv", "--samples", str(out / "otelplug-logs.jsonl"),
               "--output", str(report_path))
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(report_path.read_text())
    assert report["all_adapters_valid"] is True
    adapters = report["adapters"]
    assert sorted(adapters) == ["consensus_engine", "gpu_kernel:inference.batch", "orchestrator"]
    for name, adapter in adapters.items():
        assert adapter["events"]["adapter.started"]["events"] == 1, name
        assert adapter["events"]["adapter.stopped"]["events"] == 1, name
    assert adapters["consensus_engine"]["events"]["otelplug.demo.item"]["events"] > 0
    assert report["log_records_without_event_name"] > 0  # the web and GPU workers' plain logs
