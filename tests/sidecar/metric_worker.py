"""A metrics producer process for the Prometheus test: the OTel SDK's
MeterProvider with PeriodicExportingMetricReader(ShmMetricExporter) at a
short interval, counting work until SIGTERM.  Then it shuts the provider
down (a final export) and prints its own exact totals as JSON, which is
what the merged exporter must add up."""
from __future__ import annotations

import json
import signal
import sys
import time

BOUNDS = [0.01, 0.1, 1.0]


def main(channel: str, interval_ms: int) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    from otelplug import ShmMetricExporter

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    reader = PeriodicExportingMetricReader(ShmMetricExporter(channel),
                                           export_interval_millis=interval_ms)
    mp = MeterProvider(resource=Resource.create({"service.name": "promtest",
                                                 "deployment.environment": "test"}),
                       metric_readers=[reader])
    meter = mp.get_meter("promtest.worker", "0.1")
    items = meter.create_counter("work.items", unit="{item}", description="Items processed")
    duration = meter.create_histogram("work.duration", unit="s", description="Time per item",
                                      explicit_bucket_boundaries_advisory=BOUNDS)
    inflight = meter.create_gauge("work.queue.depth", unit="{item}", description="Queue depth")
    totals = {"items": {"/a": 0, "/b": 0}, "count": 0, "sum": 0.0, "le_0.1": 0}
    i = 0
    print("ready", flush=True)
    while not stop:
        route = "/a" if i % 3 else "/b"
        items.add(1, {"route": route})
        totals["items"][route] += 1
        value = (i % 7) * 0.03          # 0 .. 0.18 s
        duration.record(value)
        totals["count"] += 1
        totals["sum"] += value
        totals["le_0.1"] += value <= 0.1
        inflight.set(i % 5)
        i += 1
        time.sleep(0.002)
    mp.shutdown()
    print(json.dumps(totals), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
