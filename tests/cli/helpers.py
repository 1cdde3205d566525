"""Helpers for the CLI tests: run ``python -m otelplug.cli.main`` and start
real producer processes (``ring_writer.py``) that report their true counts.

Subprocesses inherit ``$OTELPLUG_SHM_DIR`` from the autouse fixture in
``tests/conftest.py``, so every test sees only its own rings.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import otelplug

WRITER = Path(__file__).with_name("ring_writer.py")
CLI = [sys.executable, "-m", "otelplug.cli.main"]


def child_env() -> dict:
    """The environment for child processes: they must import the same
    otelplug as the tests do, whatever the current directory is."""
    env = dict(os.environ)
    src = str(Path(otelplug.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def run_cli(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True,
                          timeout=timeout, env=child_env())


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, text=True, env=child_env())


class Writer:
    """A producer process holding its ring open until ``stop()``."""

    def __init__(self, channel: str, capacity: int, count: int, oversize: int = 0):
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), channel, str(capacity), str(count), str(oversize)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env())
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"ring writer failed (exit {self.proc.wait()})")
        self.truth = json.loads(line)
        self.pid = self.truth["pid"]

    def stop(self) -> None:
        """Let the producer close its ring and exit (killed if it hangs)."""
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


