"""Shared by the pre-fork web server tests (gunicorn, uWSGI): a Flask app
instrumented with opentelemetry-instrumentation-flask and ShmSpanProcessor,
a load that keeps going until every worker has served, and the check that
each worker's spans arrived through its own ring with its own resource."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import textwrap
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from producer_helpers import drain
from tests.requirements import ROOT
from tests.waiting import wait_for

APP_MODULE = "otelplug_web_app"
APP = textwrap.dedent('''
    import os, time
    from flask import Flask
    from opentelemetry import trace
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from otelplug import ShmSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "web-app"}))
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

#: requests per round; rounds go on until every worker has served
ROUND = 15


def write_app(folder: Path) -> dict:
    """Write the app module into ``folder``; returns the environment for the
    server: the app's folder and this checkout first on PYTHONPATH."""
    (folder / f"{APP_MODULE}.py").write_text(APP)
    path = os.pathsep.join(filter(None, [str(folder), str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def serve_until_every_worker(server: subprocess.Popen, port: int, workers: int) -> dict[str, str]:
    """Rounds of concurrent requests until ``workers`` distinct pids have
    answered (a server that accepts is not yet one whose every worker has
    booted).  Returns {request id: response body}."""
    def accepting():
        if server.poll() is not None:
            raise AssertionError(f"the server exited: {server.stderr.read().decode()[-2000:]}")
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    wait_for(accepting, what=f"the server to accept on port {port}")
    bodies: dict[str, str] = {}

    def one_round():
        start = len(bodies)
        rids = [f"r{start + i}" for i in range(ROUND)]
        with ThreadPoolExecutor(9) as pool:
            bodies.update(zip(rids, pool.map(lambda r: _get(f"http://127.0.0.1:{port}/work/{r}"), rids)))
        return len({b.split()[0] for b in bodies.values()}) >= workers
    wait_for(one_round, what=f"all {workers} workers to serve", interval=0)
    return bodies


def stop(server: subprocess.Popen, sig=signal.SIGTERM) -> None:
    server.send_signal(sig)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def check_every_span_through_its_workers_ring(bodies: dict[str, str], workers: int) -> set[int]:
    """Every request's two spans arrived, each through the ring of the worker
    that served it, with that worker's pid in the resource; nothing dropped.
    Returns the workers' pids."""
    served_by = {rid: int(b.split()[0]) for rid, b in bodies.items()}
    pids = set(served_by.values())
    assert len(pids) == workers
    got = drain(timeout=15)
    spans_by_request: dict[str, list] = {}
    for pid, span in got.spans:
        spans_by_request.setdefault(span.attributes["app.request_id"], []).append((pid, span))
    assert len(got.spans) == 2 * len(bodies)
    assert sorted(spans_by_request) == sorted(served_by)
    for rid, spans in spans_by_request.items():
        assert sorted(s.name for _, s in spans) == ["GET /work/<rid>", "handler"]
        for pid, span in spans:
            assert pid == served_by[rid]                 # through the worker's own ring
            resource = got.resource_of(pid, span)
            assert resource.attributes["process.pid"] == pid
            assert resource.attributes["service.name"] == "web-app"
    for pid, counters in got.rings.items():
        assert counters.get("dropped_full", 0) == 0 and counters.get("oversize", 0) == 0
    assert {pid for pid, _ in got.spans} == pids
    return pids
