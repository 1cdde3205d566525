"""A real gunicorn with 3 sync workers serving real HTTP requests, the app
instrumented with opentelemetry-instrumentation-flask and ShmSpanProcessor:
every span of every worker reaches the consumer, each through its worker's
own ring and with its worker's resource (process.pid), with and without
--preload (provider created in the master before the fork)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.requirements import require_module
from web_workers import (APP_MODULE, check_every_span_through_its_workers_ring, free_port,
                         serve_until_every_worker, stop, write_app)

require_module("gunicorn")
require_module("opentelemetry.instrumentation.flask")


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_gunicorn_workers_each_deliver_every_span(tmp_path, preload):
    env = write_app(tmp_path)
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--workers", "3", "--bind", f"127.0.0.1:{port}",
           "--chdir", str(tmp_path), "--graceful-timeout", "5", "--log-level", "warning"]
    if preload:
        cmd.append("--preload")
    server = subprocess.Popen(cmd + [f"{APP_MODULE}:app"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)
    try:
        bodies = serve_until_every_worker(server, port, workers=3)
    finally:
        stop(server)
    created_in = {int(b.split()[1]) for b in bodies.values()}
    workers = check_every_span_through_its_workers_ring(bodies, workers=3)
    if preload:
        assert created_in == {server.pid}, "with --preload the provider is made in the master"
    else:
        assert created_in == workers
