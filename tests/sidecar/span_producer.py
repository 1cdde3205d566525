"""A producer process for sidecar tests: spans through ShmSpanProcessor at a
steady rate until SIGTERM; then prints JSON with every ended span's id and
the processor's counters, so a test knows exactly what was committed."""
from __future__ import annotations

import json
import signal
import sys
import time


def main(channel: str, rate: float) -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from otelplug import ShmSpanProcessor
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    proc = ShmSpanProcessor(channel)
    tp = TracerProvider(resource=Resource.create({"service.name": "reliability"}))
    tp.add_span_processor(proc)
    tracer = tp.get_tracer("reliability.test")
    ids = []
    i = 0
    period = 1.0 / rate
    next_at = time.monotonic()
    print("ready", flush=True)
    while not stop:
        with tracer.start_as_current_span("work", attributes={"seq": i, "pad": "x" * 64}) as s:
            ids.append(s.get_span_context().span_id)
        i += 1
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    st = proc.producer.stats()
    print(json.dumps({"span_ids": [f"{x:016x}" for x in ids], "written": proc.written,
                      "dropped": proc.dropped, "ring": {k: st[k] for k in ("attempted", "committed",
                                                                           "dropped_full")}}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
