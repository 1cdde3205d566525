"""A real uWSGI (pip's uwsgi, with its own embedded Python) with 3 worker
processes serving real HTTP requests, the app instrumented as in the
gunicorn test: every span of every worker reaches the consumer through that
worker's own ring, with its pid in the resource.

By default uWSGI loads the app once in the master and forks the workers
from C, without Python's os.fork (so no os.register_at_fork hook runs: the
ring's pthread_atfork generation is what gives each worker its own ring);
with --lazy-apps every worker loads the app itself after the fork."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.requirements import missing, require_module
from web_workers import (APP_MODULE, check_every_span_through_its_workers_ring, free_port,
                         serve_until_every_worker, stop, write_app)

require_module("opentelemetry.instrumentation.flask")


def uwsgi_binary() -> str:
    """pip's uwsgi beside this interpreter: it embeds this Python (Debian's
    /usr/bin/uwsgi would need a plugin for another Python)."""
    exe = Path(sys.executable).parent / "uwsgi"
    if not exe.exists():
        missing("pip's uwsgi for this interpreter", "pip install -e '.[test]' installs it")
    return str(exe)


@pytest.mark.parametrize("lazy_apps", [False, True], ids=["forked", "lazy-apps"])
def test_uwsgi_workers_each_deliver_every_span(tmp_path, lazy_apps):
    env = write_app(tmp_path)
    port = free_port()
    cmd = [uwsgi_binary(), "--master", "--processes", "3", "--http-socket", f"127.0.0.1:{port}",
           "--chdir", str(tmp_path), "--module", f"{APP_MODULE}:app", "--need-app",
           "--die-on-term", "--disable-logging"]
    if lazy_apps:
        cmd.append("--lazy-apps")
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        bodies = serve_until_every_worker(server, port, workers=3)
    finally:
        stop(server, signal.SIGTERM)
    assert server.returncode is not None
    created_in = {int(b.split()[1]) for b in bodies.values()}
    workers = check_every_span_through_its_workers_ring(bodies, workers=3)
    assert server.pid not in workers
    if lazy_apps:
        assert created_in == workers, "with --lazy-apps each worker loads the app"
    else:
        assert created_in == {server.pid}, "by default the master loads the app before forking"
