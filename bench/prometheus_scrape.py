"""Scrape time of merged multi-process metrics: otelplug's prometheus
exporter vs prometheus_client's multiprocess mode.

Both hold the same data: P worker processes, each with S counter series
and S histogram series (6 buckets).  otelplug: the workers' metric records
(as ShmMetricExporter writes them, one resource per pid) merged by the
exporter; a scrape renders the merged view.  prometheus_client: P real
child processes write their mmap files into PROMETHEUS_MULTIPROC_DIR; a
scrape is ``generate_latest(MultiProcessCollector)``, which reads every
file.  Times are the median of ``--repeats`` scrapes.

    python bench/prometheus_scrape.py --processes 8 --series 1000
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BOUNDS = [0.005, 0.01, 0.05, 0.1, 0.5, 1.0]

CHILD = """
import sys
from prometheus_client import Counter, Histogram
n = int(sys.argv[1])
c = Counter("work_items", "Items", ["k"])
h = Histogram("work_duration_seconds", "Time", ["k"], buckets={bounds})
for i in range(n):
    c.labels(str(i)).inc(i + 1)
    h.labels(str(i)).observe(0.05)
"""


def otelplug_scrape(processes: int, series: int, repeats: int):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource

    from otelplug import codec
    from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
    from otelplug.sidecar.config.decode import decode
    from otelplug.codec.recordset import RecordSet
    from otelplug.sidecar.exporters import prometheus
    from otelplug.sidecar.telemetry import Telemetry

    cfg = decode(prometheus.PrometheusConfig, {"endpoint": "127.0.0.1:0"})
    exp = prometheus.PrometheusExporter(
        CreateSettings(ComponentID("prometheus"), Kind.EXPORTER, "metrics", Telemetry()), cfg)
    ingest = []
    for pid in range(1000, 1000 + processes):
        reader = InMemoryMetricReader()
        mp = MeterProvider(resource=Resource.create({"service.name": "bench"}),
                           metric_readers=[reader])
        m = mp.get_meter("bench")
        c = m.create_counter("work.items")
        h = m.create_histogram("work.duration", unit="s", explicit_bucket_boundaries_advisory=BOUNDS)
        for i in range(series):
            c.add(i + 1, {"k": str(i)})
            h.record(0.05, {"k": str(i)})
        data = reader.get_metrics_data()
        defs, parts = {}, []
        for rm in data.resource_metrics:
            rp = codec.encode_resource(rm.resource, pid)
            rk = codec.definition_key(rp)
            defs[rk] = rp
            for sm in rm.scope_metrics:
                sp = codec.encode_scope(sm.scope)
                sk = codec.definition_key(sp)
                defs[sk] = sp
                parts += [codec.encode_metric(x, rk, sk) for x in sm.metrics]
        rs = RecordSet.from_parts("metrics", parts, defs)
        t0 = time.perf_counter()
        exp.consume(rs)
        ingest.append(time.perf_counter() - t0)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        body, _ = exp.exposition()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(body), sum(ingest) / processes


def prometheus_client_scrape(processes: int, series: int, repeats: int):
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=d)
        code = CHILD.format(bounds=BOUNDS)
        for _ in range(processes):
            subprocess.run([sys.executable, "-c", code, str(series)], env=env, check=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = d
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess
        times = []
        for _ in range(repeats):
            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
            t0 = time.perf_counter()
            body = generate_latest(reg)
            times.append(time.perf_counter() - t0)
        return statistics.median(times), len(body), len(os.listdir(d))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    t, size, ingest = otelplug_scrape(a.processes, a.series, a.repeats)
    print(f"otelplug prometheus exporter: scrape {t * 1e3:.1f} ms, {size / 1e3:.0f} kB; "
          f"merging one process's export: {ingest * 1e3:.1f} ms")
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        print("prometheus_client not installed (pip install prometheus_client): skipped")
        return
    t, size, files = prometheus_client_scrape(a.processes, a.series, a.repeats)
    print(f"prometheus_client multiprocess: scrape {t * 1e3:.1f} ms, {size / 1e3:.0f} kB, "
          f"{files} files")


if __name__ == "__main__":
    main()
