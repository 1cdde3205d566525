"""A real gunicorn with 3 sync workers serving real HTTP requests, the app
instrumented with opentelemetry-instrumentation-flask and ShmSpanProcessor:
every span of every worker reaches the consumer, each through its worker's
own ring and with its worker's resource (process.pid), with and without
--preload (provider created in the master before the fork)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from producer_helpers import drain
from tests.requirements import require_module

require_module("gunicorn")
require_module("opentelemetry.instrumentation.flask")

APP = textwrap.dedent('''
    import os, time
    from flask import Flask
    from opentelemetry import trace
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from otelplug import ShmSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "gunicorn-app"}))
    provider.add_span_processor(ShmSpanProcessor())
    trace.set_tracer_provider(provider)
    CREATED_IN = os.getpid()

    app = Flask(__name__)
    FlaskInstrumentor().instrument_app(app)

    @app.route("/work/<rid>")
    def work(rid):
        trace.get_current_span().set_attribute("app.request_id", rid)
        with trace.get_tracer("app.handler").start_as_current_span("handler") as span:
            span.set_attribute("app.request_id", rid)
            time.sleep(0.03)   # keep the worker busy so the others take requests
        return f"{os.getpid()} {CREATED_IN}"
''')

N_REQUESTS = 45


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def _wait_until_serving(proc, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("gunicorn did not start serving")


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_gunicorn_workers_each_deliver_every_span(tmp_path, preload):
    (tmp_path / "otelplug_gunicorn_app.py").write_text(APP)
    port = _free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--workers", "3", "--bind", f"127.0.0.1:{port}",
           "--chdir", str(tmp_path), "--graceful-timeout", "5", "--log-level", "warning"]
    if preload:
        cmd.append("--preload")
    server = subprocess.Popen(cmd + ["otelplug_gunicorn_app:app"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    try:
        _wait_until_serving(server, port)
        with ThreadPoolExecutor(9) as pool:
            bodies = list(pool.map(lambda i: _get(f"http://127.0.0.1:{port}/work/r{i}"),
                                   range(N_REQUESTS)))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    served_by = {f"r{i}": int(b.split()[0]) for i, b in enumerate(bodies)}
    created_in = {int(b.split()[1]) for b in bodies}
    workers = set(served_by.values())
    if preload:
        assert created_in == {server.pid}, "with --preload the provider is made in the master"
    else:
        assert created_in == workers
    assert len(workers) == 3, f"requests were served by {len(workers)} workers only"

    got = drain(timeout=15)
    spans_by_request: dict[str, list] = {}
    for pid, span in got.spans:
        spans_by_request.setdefault(span.attributes["app.request_id"], []).append((pid, span))
    assert len(got.spans) == 2 * N_REQUESTS
    assert sorted(spans_by_request) == sorted(served_by)
    for rid, spans in spans_by_request.items():
        assert sorted(s.name for _, s in spans) == ["GET /work/<rid>", "handler"]
        for pid, span in spans:
            assert pid == served_by[rid]                 # through the worker's own ring
            resource = got.resource_of(pid, span)
            assert resource.attributes["process.pid"] == pid
            assert resource.attributes["service.name"] == "gunicorn-app"
    # nothing dropped anywhere
    for pid, counters in got.rings.items():
        assert counters.get("dropped_full", 0) == 0 and counters.get("oversize", 0) == 0
    assert {pid for pid, _ in got.spans} == workers
