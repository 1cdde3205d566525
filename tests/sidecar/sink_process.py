"""tests/otlp_sink.py as its own process, for outages where the destination
is really gone (connection refused) and then comes back on the same port.

    python sink_process.py PORT FILE   prints "ready" once listening; appends
                                       the span ids of every accepted
                                       request to FILE (one per line) as
                                       they arrive; exits on SIGTERM
"""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.otlp_sink import OTLPSink  # noqa: E402


class _RecordingSink(OTLPSink):
    def __init__(self, port: int, out):
        super().__init__(http_enabled=False, grpc_port=port)
        self.out = out

    def _record(self, item) -> None:
        super()._record(item)
        if item.signal == "traces":
            ids = [s.span_id.hex() for rs in item.request.resource_spans
                   for ss in rs.scope_spans for s in ss.spans]
            with self._lock:
                self.out.write("".join(i + "\n" for i in ids))
                self.out.flush()


def main(port: int, path: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    with open(path, "a") as out, _RecordingSink(port, out):
        print("ready", flush=True)
        stop.wait()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
