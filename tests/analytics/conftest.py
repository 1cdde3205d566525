"""Real peers for the alert tests: an Alertmanager (Debian package
prometheus-alertmanager) on a free loopback port, a webhook receiver, and
an ``otelplug run`` sidecar process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.peers.run import free_port, wait_for  # noqa: F401  (the shared ones; tests import them from here)
from tests.requirements import require_executable

ROOT = Path(__file__).resolve().parents[2]


def http_json(url, body=None, method=None, timeout=5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


class Alertmanager:
    def __init__(self, tmp: Path):
        self.binary = require_executable("prometheus-alertmanager",
                                         "apt-get install prometheus-alertmanager (.ci/run does)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = tmp / "alertmanager.yml"
        cfg.write_text("route: {receiver: blackhole, group_wait: 0s, group_interval: 1s}\n"
                       "receivers: [{name: blackhole}]\n")
        self.tmp, self.cfg = tmp, cfg
        self.proc = None

    def start(self) -> "Alertmanager":
        self.log = open(self.tmp / "alertmanager.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.cfg}", f"--storage.path={self.tmp / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._ready, 30, "alertmanager ready")
        return self

    def _ready(self):
        assert self.proc.poll() is None, (self.tmp / "alertmanager.log").read_text()
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def alerts(self, name=None):
        got = http_json(f"{self.url}/api/v2/alerts")
        return [a for a in got if name is None or a["labels"].get("alertname") == name]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def alertmanager(tmp_path):
    am = Alertmanager(tmp_path).start()
    yield am
    am.stop()


class Webhook:
    """Records the JSON bodies POSTed to it."""

    def __init__(self):
        self.bodies = []
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                hook.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def webhook():
    w = Webhook()
    yield w
    w.server.shutdown()
    w.server.server_close()


class Sidecar:
    """``otelplug run`` as a subprocess of this checkout."""

    def __init__(self, cfg_path: Path):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.log_path = cfg_path.with_suffix(".log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "otelplug.cli.main", "run", "--config",
                                      str(cfg_path)], stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, port, timeout=60):
        def up():
            assert self.proc.poll() is None, self.output()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False
        wait_for(up, timeout, f"the sidecar listening on {port}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
