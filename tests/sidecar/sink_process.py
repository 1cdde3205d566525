"""tests/otlp_sink.py as its own process, for outages where the destination
is really gone (connection refused) and then comes back on the same port.

    python sink_process.py PORT     prints "ready" once listening; on SIGTERM
                                    prints JSON {"span_ids": [...]} and exits
"""
from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.otlp_sink import OTLPSink  # noqa: E402


def main(port: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    with OTLPSink(http_enabled=False, grpc_port=port) as sink:
        print("ready", flush=True)
        stop.wait()
        print(json.dumps({"span_ids": [s.span_id.hex() for s in sink.spans()]}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
