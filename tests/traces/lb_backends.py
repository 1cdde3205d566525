"""Backend processes for the loadbalancing tests (lb_sink.py each)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


class SinkProcess:
    """lb_sink.py in its own process; ``got[trace_hex]`` counts spans."""

    def __init__(self, host="127.0.0.1", port=0):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, str(HERE / "lb_sink.py"), host, str(port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        self.host, self.port = host, None
        self.got: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 30
        while self.port is None:
            assert time.monotonic() < deadline and self.proc.poll() is None, "sink did not start"
            time.sleep(0.02)

    def _read(self):
        for line in self.proc.stdout:
            a, b = line.split()
            if a == "port":
                self.port = int(b)
            else:
                with self._lock:
                    self.got[a] += int(b)

    @property
    def endpoint(self):
        return f"{self.host}:{self.port}"

    def snapshot(self):
        with self._lock:
            return dict(self.got)

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def spans_at(sinks) -> int:
    return sum(sum(s.snapshot().values()) for s in sinks)
