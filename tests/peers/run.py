"""Run the real Collector and Jaeger beside a test, on 127.0.0.1 only.

``require_collector()`` / ``require_jaeger()`` give the built binary or
skip (locally) / fail (CI) through tests.requirements.  ``Program`` starts
a binary with a config written to a temporary folder, waits for the ports
it should open, and stops it (SIGTERM, then SIGKILL) keeping its output
for the failure message.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.peers.build import collector_binary, jaeger_binary
from tests.requirements import missing

BUILD_HINT = "build it with `python -m tests.peers build` (needs Go and the module proxy)"


def require_collector() -> Path:
    path = collector_binary()
    if not path.exists():
        missing(f"the OpenTelemetry Collector at {path}", BUILD_HINT)
    return path


def require_jaeger() -> Path:
    path = jaeger_binary()
    if not path.exists():
        missing(f"Jaeger at {path}", BUILD_HINT)
    return path


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; that value,
    or AssertionError naming ``what`` (a string, or a callable giving one
    at the deadline, e.g. with the peers' output by then)."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for "
                                 f"{what() if callable(what) else what}")
        time.sleep(interval)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Program:
    """One running peer process."""

    def __init__(self, argv: list[str], workdir: Path, name: str, env=None):
        self.argv, self.workdir, self.name = argv, Path(workdir), name
        self.log_path = self.workdir / f"{name}.log"
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, ports=(), timeout: float = 60.0) -> "Program":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=self.env)
        try:
            for port in ports:
                wait_for(lambda: self._alive() and _port_open(port), timeout,
                         lambda: f"{self.name} to listen on 127.0.0.1:{port}\n{self.output()}")
        except BaseException:
            self.stop()          # never leave a half-started peer behind
            raise
        return self

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
        return True

    def output(self, tail: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> "Program":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def collector(config_yaml: str, workdir: Path, ports=(), name: str = "otelcol", env=None,
              args=()) -> Program:
    """The Collector running ``config_yaml`` (started, listening on ``ports``)."""
    binary = require_collector()
    config = Path(workdir) / f"{name}.yaml"
    config.write_text(config_yaml)
    return Program([str(binary), "--config", str(config), *args], workdir, name, env=env).start(ports)


def collector_validate(config_path: Path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(require_collector()), "validate", "--config", str(config_path)],
                          capture_output=True, text=True, timeout=120, env=env)


def sidecar_validate(config_path: Path, env=None) -> subprocess.CompletedProcess:
    import sys
    # -P: the working folder may hold a folder named otelplug; never import it
    return subprocess.run([sys.executable, "-P", "-m", "otelplug.cli.main", "validate", "--config",
                           str(config_path)], capture_output=True, text=True, timeout=120, env=env)


def jaeger(config_yaml: str, workdir: Path, ports=(), name: str = "jaeger") -> Program:
    """Jaeger v2 (all-in-one) running ``config_yaml``."""
    binary = require_jaeger()
    config = Path(workdir) / f"{name}.yaml"
    config.write_text(config_yaml)
    return Program([str(binary), "--config", str(config)], workdir, name,
                   env={**os.environ}).start(ports)


def sidecar(config_yaml: str, workdir: Path, ports=(), name: str = "sidecar", env=None) -> Program:
    """``otelplug run`` (this checkout, via PYTHONPATH) running ``config_yaml``."""
    import sys
    config = Path(workdir) / f"{name}.yaml"
    config.write_text(config_yaml)
    return Program([sys.executable, "-P", "-m", "otelplug.cli.main", "run", "--config", str(config),
                    "--log-level", "info"], workdir, name, env=env).start(ports)
