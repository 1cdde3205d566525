"""``otelplug demo``: the adapters' error spans raise a real alert that
fires and resolves, and the summary shows it."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.analytics.conftest import ROOT


def test_demo_alert_fires_and_resolves(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OTELPLUG_SHM_DIR=str(tmp_path / "shm"))
    (tmp_path / "shm").mkdir()
    r = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "demo", "--seconds", "2",
                        "--adapters", "2", "--output", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"DemoErrorSpans\s+fired (\d+) time\(s\), resolved (\d+) time\(s\)", r.stdout)
    assert m and int(m.group(1)) >= 1 and m.group(1) == m.group(2), r.stdout
    assert re.search(r"\n\s+resolved\s+fired at\s+[\d.]+s, resolved at", r.stdout), r.stdout
    assert "analytics.span.count" in (tmp_path / "out" / "otelplug-analytics.jsonl").read_text()
