"""``otelplug demo --serve`` prints the status page URL, keeps serving it
after the run until Ctrl-C (SIGINT), then exits cleanly."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

from .sidecar import ROOT, call


def test_demo_serve_until_ctrl_c(tmp_path, shm_dir):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "otelplug.cli.main", "demo", "--seconds", "1", "--adapters", "1",
                          "--rate", "200", "--output", str(tmp_path / "out"), "--serve"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(p.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("serving the status page" in ln for ln in lines):
            assert p.poll() is None, "".join(lines)
            time.sleep(0.1)
        text = "".join(lines)
        assert "serving the status page" in text, text
        url = re.search(r"status page: (\S+)", text).group(1)
        parts = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parts.fragment)["token"][0]
        assert parts.hostname == "127.0.0.1"
        code, st = call(parts.port, "/api/v1/status", token)
        assert code == 200 and st["health"]["status"] == "healthy"
        sent = sum(e["sent"] for e in st["exporters"])
        assert sent > 0, st["exporters"]
        assert call(parts.port, "/api/v1/status")[0] == 401
        assert call(parts.port, "/api/v1/public")[0] == 200      # anonymous public in the demo
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=60) == 0, "".join(lines)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
