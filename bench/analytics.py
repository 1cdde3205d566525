"""Stream analytics (issue 11): the analytics connector's CPU per span,
the quantile sketch's error and speed, memory per group and window, and the
latency from a matching span to the alert in a real Alertmanager.

1. CPU per span, interleaved rounds, median per case, on batches of 8,192
   real SDK spans in 1,000 groups (10 services x 100 span names, 2% errors,
   lognormal durations) whose event times advance as at 1 M spans/s offered:
   - baseline: ``decode_span_columns`` + the otlp exporter's payload
     encoding (what the sidecar spends to export the same spans);
   - spanmetrics connector (the Collector's R.E.D. metrics, explicit buckets);
   - analytics connector, 3 windows (tumbling 1s, hopping 5s every 1s,
     session gap 1s), windows closed by a flush every 250 ms of event time
     (its cost included, with the metrics records it emits); a run is
     ``--batches`` batches (default 3 s of event time).
2. Quantile error: the sketch's p50/p95/p99 per group against exact numpy
   quantiles (``method="lower"``, the rank the sketch bounds) of the same
   durations; stated bound = relative_accuracy.  Also the ``ddsketch``
   package (one sketch object per group, values added in a Python loop)
   on the same values, when installed.
3. Memory: bytes per group and open window; tracemalloc peak while 100,000
   distinct groups arrive with cardinality_limit 2,000 (and without a limit).
4. Latency: ``otelplug run`` + a real Alertmanager; one matching error span
   sent over OTLP/HTTP; time until Alertmanager's /api/v2/alerts lists the
   alert (rule ``for: 0s``, evaluation_interval 1s).

    python bench/analytics.py                 # ~1-3 min
    python bench/analytics.py --rounds 3 --batches 60 --no-latency
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from otelplug import codec  # noqa: E402
from otelplug.analytics.windows import StreamAggregator, StreamConfig, WindowSpec  # noqa: E402
from otelplug.sidecar.connectors import analytics, spanmetrics  # noqa: E402
from otelplug.codec.recordset import RecordSet  # noqa: E402
from otelplug.sidecar.exporters.otlp import payload_for  # noqa: E402
from tests.sidecar.helpers import records_from_spans  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampling import Null, make  # noqa: E402  (bench/sampling.py: a counting sink, a component maker)

S = 1_000_000_000
T0 = 1_700_000_000 * S
START_AT = 32          # span record prefix: trace id 16, span id 8, parent 8, then start, end (u64)
WINDOWS = [{"name": "1s", "type": "tumbling", "size": "1s"},
           {"name": "5s_by_1s", "type": "hopping", "size": "5s", "step": "1s"},
           {"name": "session", "type": "session", "gap": "1s"}]
FLUSH_NS = S // 4


def template(n: int, seed=3) -> tuple[RecordSet, np.ndarray]:
    rng = np.random.default_rng(seed)
    mem = InMemorySpanExporter()
    tracers = []
    for s in range(10):
        tp = TracerProvider(resource=Resource.create({"service.name": f"svc{s}"}))
        tp.add_span_processor(SimpleSpanProcessor(mem))
        tracers.append(tp.get_tracer("bench"))
    durs = rng.lognormal(np.log(5e6), 1.0, n).astype(np.int64)      # ~5 ms median
    for i in range(n):
        s = tracers[i % 10].start_span(f"op{(i // 10) % 100}", kind=SpanKind.SERVER, start_time=T0,
                                       attributes={"http.route": "/x"})
        if rng.random() < 0.02:
            s.set_status(Status(StatusCode.ERROR))
        s.end(end_time=T0 + int(durs[i]))
    return records_from_spans(mem.get_finished_spans()), durs


class Stream:
    """The template with event times moved on as at ``rate`` spans/s."""

    def __init__(self, tpl: RecordSet, durs: np.ndarray, rate: float):
        self.tpl, self.durs, self.rate = tpl, durs, rate
        self.buf = np.frombuffer(tpl.buf, np.uint8).copy()
        off = tpl.offsets.astype(np.int64)[:, None] + np.arange(8)
        self.start_idx, self.end_idx = off + START_AT, off + START_AT + 8
        self.k = 0

    def __call__(self) -> tuple[RecordSet, int]:
        n = len(self.tpl)
        ends = T0 + ((self.k * n + np.arange(n)) * (S / self.rate)).astype(np.int64)
        self.buf[self.end_idx] = ends.view(np.uint8).reshape(n, 8)
        self.buf[self.start_idx] = (ends - self.durs).view(np.uint8).reshape(n, 8)
        self.k += 1
        t = self.tpl
        return RecordSet("traces", self.buf.tobytes(), t.offsets, t.lengths, t.defs), int(ends[-1])


def cpu_per_span(args):
    tpl, durs = template(args.batch)
    n = len(tpl)
    cases = ["baseline (columns + OTLP encode)", "spanmetrics connector", "analytics connector (3 windows)"]
    times = {c: [] for c in cases}
    for rnd in range(args.rounds):
        for case in cases[rnd % 3:] + cases[:rnd % 3]:
            stream = Stream(tpl, durs, 1e6)
            if case.startswith("analytics"):
                comp = make(analytics.factory, {"windows": WINDOWS, "flush_interval": "1h",
                                                "cardinality_limit": 5000, "watermark_delay": "0s",
                                                "allowed_lateness": "0s"})
                comp.core.outputs["traces"] = Null()
            elif case.startswith("spanmetrics"):
                comp = make(spanmetrics.factory, {})
            next_flush = T0 + FLUSH_NS
            cpu = 0.0
            for _ in range(args.batches):
                rs, last = stream()          # making the batch is not timed
                t0 = time.process_time()
                if case.startswith("baseline"):
                    codec.decode_span_columns(rs)
                    payload_for(rs)
                elif case.startswith("spanmetrics"):
                    comp.consume(rs)
                else:
                    comp.core.add("traces", rs, last)
                    if last >= next_flush:
                        comp.core.flush(last)
                        next_flush += FLUSH_NS
                cpu += time.process_time() - t0
            times[case].append(cpu / (n * args.batches) * 1e6)
            if case.startswith("analytics"):
                groups = len(comp.core.aggs["traces"].groups)
                rows = comp.core._windows.value(connector="analytics", signal="traces")
            print(f"  round {rnd + 1} {case:34s} {times[case][-1]:6.3f} us/span", flush=True)
    base = statistics.median(times[cases[0]])
    print(f"\n{n * args.batches:,} spans per run ({args.batches} batches of {n}), 1,000 groups "
          f"({groups} seen), {rows:.0f} window rows emitted per analytics run; median of {args.rounds}")
    print(f"{'':36s} {'us/span':>8s} {'x baseline':>10s}")
    for c in cases:
        us = statistics.median(times[c])
        print(f"{c:36s} {us:8.3f} {us / base:10.2f}")


def quantile_error(args):
    rng = np.random.default_rng(11)
    n, groups = 400_000, 1000
    g = rng.integers(0, groups, n)
    v = rng.lognormal(np.log(5e6), 1.2, n)
    alpha = 0.01
    agg = StreamAggregator(StreamConfig([WindowSpec("w", "tumbling", size_ns=10 * S)], delay_ns=0,
                                        group_limit=groups + 1, relative_accuracy=alpha))
    keys = [(i,) for i in range(groups)]
    t = np.full(n, S)
    t0 = time.process_time()
    agg.add(keys, lambda j: {"g": j}, g, t, v, np.zeros(n), 0)
    [res] = agg.advance(100 * S)
    sketch_us = (time.process_time() - t0) / n * 1e6
    worst = {q: 0.0 for q in (0.5, 0.95, 0.99)}
    order = np.argsort(res.group)
    for row in order:
        gid = int(res.group[row])
        exact = np.quantile(v[g == gid - 1], list(worst), method="lower")
        for k, q in enumerate(worst):
            worst[q] = max(worst[q], abs(res.quantiles[row, k] - exact[k]) / exact[k])
    print(f"\nquantile error, {n:,} values in {groups} groups, relative_accuracy {alpha}:")
    for q, e in worst.items():
        print(f"  p{int(q * 100):<3d} worst relative error {e:.5f}  (bound {alpha})  "
              f"{'OK' if e <= alpha else 'OVER BOUND'}")
    print(f"  GroupSketch (numpy, whole pipeline add + close): {sketch_us:.3f} us/value")
    try:
        from ddsketch import DDSketch
    except ImportError:
        print("  ddsketch package not installed: pip install ddsketch to compare")
        return
    sketches = [DDSketch(alpha) for _ in range(groups)]
    vals, gl = v.tolist(), g.tolist()
    t0 = time.process_time()
    for gi, x in zip(gl, vals):
        sketches[gi].add(x)
    dd_us = (time.process_time() - t0) / n * 1e6
    dd_worst = 0.0
    for gid in range(0, groups, 10):
        exact = np.quantile(v[g == gid], 0.99, method="lower")
        dd_worst = max(dd_worst, abs(sketches[gid].get_quantile_value(0.99) - exact) / exact)
    print(f"  ddsketch package, one DDSketch per group, add() per value: {dd_us:.3f} us/value "
          f"({dd_us / sketch_us:.0f}x), p99 worst relative error {dd_worst:.5f}")


def memory(args):
    tpl, durs = template(8192)
    comp = make(analytics.factory, {"windows": WINDOWS, "flush_interval": "1h", "cardinality_limit": 5000})
    stream = Stream(tpl, durs, 1e6)
    for _ in range(40):
        rs, last = stream()
        comp.core.add("traces", rs, last)
    agg = comp.core.aggs["traces"]
    open_windows = sum(len(w.open) if hasattr(w, "open") else 1 for w in agg.windows)
    groups = len(agg.groups)
    per = agg.nbytes() / (groups * open_windows)
    print(f"\nmemory: {groups} groups, {open_windows} open window instances (3 specs): "
          f"{agg.nbytes() / 1e6:.2f} MB of arrays, {per:.0f} B per group and window")

    for limit in (2000, 200_000):
        a = StreamAggregator(StreamConfig([WindowSpec("1s", "tumbling", size_ns=S),
                                           WindowSpec("5s", "hopping", size_ns=5 * S, step_ns=S),
                                           WindowSpec("s", "session", gap_ns=2 * S)],
                                          group_limit=limit, delay_ns=0))
        tracemalloc.start()
        for b in range(100):                      # 100 batches of 1,000 new groups each
            keys = [(f"svc{b}", f"op{i}") for i in range(1000)]
            a.add(keys, lambda j, k=keys: dict(zip(("service.name", "span.name"), k[j])),
                  np.arange(1000), np.full(1000, T0 + b * 10_000_000), np.full(1000, 5e6), np.zeros(1000),
                  T0)
        cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  100,000 distinct groups, cardinality_limit {limit:>7,}: {len(a.groups):>7,} groups kept, "
              f"{a.groups.overflow_items:>6,} items in overflow, tracemalloc peak {peak / 1e6:7.1f} MB")


def latency(args):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from tests.analytics.conftest import Alertmanager, Sidecar, free_port, wait_for
    tmp = Path(tempfile.mkdtemp(prefix="otelplug-bench-"))
    if not os.path.exists("/usr/bin/prometheus-alertmanager"):
        print("\nlatency: prometheus-alertmanager not installed")
        return
    am = Alertmanager(tmp)
    am.start()
    otlp, ctl = free_port(), free_port()
    rules = "\n".join(f"      - {{name: L{i}, count: {{match: {{name: [op{i}], status: error}}, within: 10s,"
                      f" op: '>', value: 0}}}}" for i in range(args.latency_runs))
    cfg = tmp / "otelplug.yaml"
    cfg.write_text(f"""
receivers:
  otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{otlp}}}}}}}
exporters:
  debug: {{}}
connectors:
  analytics:
    alerts: alerts
    rules:
{rules}
extensions:
  alerts:
    endpoint: 127.0.0.1:{ctl}
    evaluation_interval: 1s
    alertmanagers: [{{endpoint: "{am.url}"}}]
service:
  extensions: [alerts]
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [analytics]}}
    metrics: {{receivers: [analytics], exporters: [debug]}}
""")
    sc = Sidecar(cfg)
    lat = []
    try:
        sc.wait_listening(otlp)
        sc.wait_listening(ctl)
        tp = TracerProvider(resource=Resource.create({"service.name": "bench"}))
        tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{otlp}/v1/traces")))
        tr = tp.get_tracer("b")
        for i in range(args.latency_runs):
            time.sleep((0.37 * i) % 1)       # start at different phases of the evaluation interval
            t0 = time.monotonic()
            with tr.start_as_current_span(f"op{i}") as s:
                s.set_status(Status(StatusCode.ERROR))
            wait_for(lambda i=i: am.alerts(f"L{i}"), 30, f"alert L{i}", interval=0.01)
            lat.append(time.monotonic() - t0)
        tp.shutdown()
    finally:
        sc.stop()
        am.stop()
    print(f"\nlatency first matching span -> alert in Alertmanager (for: 0s, evaluation_interval 1s), "
          f"{len(lat)} runs: median {statistics.median(lat):.2f} s, max {max(lat):.2f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--batches", type=int, default=366, help="batches per run (366 x 8192 = 3 M spans, 3 s)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--latency-runs", type=int, default=5)
    ap.add_argument("--no-latency", action="store_true")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, codec {codec.default_impl().name}, {os.cpu_count()} cpus, "
          f"load {os.getloadavg()[0]:.2f}")
    cpu_per_span(args)
    quantile_error(args)
    memory(args)
    if not args.no_latency:
        latency(args)
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
