"""What telemetry costs the application process: ShmSpanProcessor against the
SDK's BatchSpanProcessor + OTLP exporters.  A benchmark, not a test.

Cases, each in a fresh process of its own (run interleaved, repeated):

  a  none   spans created and ended, no processor        (the baseline)
  b  shm    ShmSpanProcessor; a consumer process drains the ring meanwhile
  c  http   BatchSpanProcessor + OTLP/HTTP exporter -> local sink process
  d  grpc   BatchSpanProcessor + OTLP/gRPC exporter -> local sink process

Each app process makes ``--spans`` spans (8 attributes, 1 event) in a tight
loop, then shuts its provider down (flushing).  Reported per case (medians):
the app process's CPU per span (all its threads, loop + final flush), the
loop's wall time, spans delivered to the sink/consumer and dropped, and the
marginal CPU per span over the baseline, with the ratios (c-a)/(b-a) and
(d-a)/(b-a).  BatchSpanProcessor runs with its default settings, as an app
would; its drops in a tight loop are part of the result.

    python bench/app_overhead.py                   # 50k spans x 5 rounds
    python bench/app_overhead.py --spans 20000 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import tempfile
import time

from _rounds import interleaved_rounds, run_app_process  # same folder: `python bench/app_overhead.py`

CASES = ("none", "shm", "http", "grpc")
LABEL = {"none": "(a) no processor", "shm": "(b) ShmSpanProcessor",
         "http": "(c) Batch + OTLP/HTTP", "grpc": "(d) Batch + OTLP/gRPC"}


# -- the app process ------------------------------------------------------------
def run_app(case: str, n: int, endpoint: str | None) -> dict:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    tp = TracerProvider(resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False)
    proc = None
    if case == "shm":
        from otelplug import ShmSpanProcessor
        proc = ShmSpanProcessor()
        tp.add_span_processor(proc)
    elif case in ("http", "grpc"):
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        if case == "http":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            exporter = OTLPSpanExporter(endpoint=endpoint)
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
        tp.add_span_processor(BatchSpanProcessor(exporter))
    tracer = tp.get_tracer("bench.app", "1.0")
    attrs = {"http.request.method": "GET", "url.path": "/api/items/42", "http.route": "/api/items/{id}",
             "server.address": "example.internal", "server.port": 8080,
             "http.response.status_code": 200, "user_agent.original": "bench/1.0",
             "app.cache.hit": False}
    event_attrs = {"cache.key": "items:42"}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        with tracer.start_as_current_span("GET /api/items/{id}", attributes=attrs) as span:
            span.add_event("cache.lookup", event_attrs)
    loop_wall = time.perf_counter() - wall0
    tp.shutdown()    # flushes batch processors: their CPU is part of the cost
    cpu = time.process_time() - cpu0
    out = {"case": case, "cpu": cpu, "loop_wall": loop_wall}
    if proc is not None:
        ring = proc.stats()["ring"]
        out["ring_dropped"] = ring.get("dropped_full", 0) + ring.get("oversize", 0)
        out["written"] = proc.written
    return out


# -- sinks and the consumer (separate processes) --------------------------------------
def _count_spans(req) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def http_sink(port, counter, ready):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest, ExportTraceServiceResponse)
    reply = ExportTraceServiceResponse().SerializeToString()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            n = _count_spans(ExportTraceServiceRequest.FromString(body))
            with counter.get_lock():
                counter.value += n
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ready.set()
    srv.serve_forever()


def _count_log_records(req) -> int:
    return sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)


def grpc_sink(port, counter, ready, signal="traces"):
    """An OTLP/gRPC receiver counting spans (or, ``signal="logs"``, log records)."""
    from concurrent import futures

    import grpc
    if signal == "logs":
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as pb2
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as pb2_grpc
        servicer, add, reply, count = (pb2_grpc.LogsServiceServicer, pb2_grpc.add_LogsServiceServicer_to_server,
                                       pb2.ExportLogsServiceResponse, _count_log_records)
    else:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb2
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as pb2_grpc
        servicer, add, reply, count = (pb2_grpc.TraceServiceServicer, pb2_grpc.add_TraceServiceServicer_to_server,
                                       pb2.ExportTraceServiceResponse, _count_spans)

    class Service(servicer):
        def Export(self, request, context):
            with counter.get_lock():
                counter.value += count(request)
            return reply()

    server = grpc.server(futures.ThreadPoolExecutor(4))
    add(Service(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.set()
    server.wait_for_termination()


CONSUMER_INTERVAL = 0.005


def ring_consumer(shm_dir, counter, ready, stop, last_at=None, spans=True):
    """Drains the channel as the sidecar would: every CONSUMER_INTERVAL it
    takes whatever is there, in batches, into numpy columns (span records;
    ``spans=False`` counts records of any type).  (Polling flat out instead
    would take a whole core from a 2-core machine, and the app's CPU time
    inflates with it.)  ``last_at``: a shared double set to the time of the
    last batch."""
    os.environ["OTELPLUG_SHM_DIR"] = shm_dir
    from otelplug.codec import decode_span_columns
    from otelplug.ring import ChannelConsumer
    c = ChannelConsumer(discover_interval=0.02)
    ready.set()
    try:
        while True:
            got = c.poll()
            for ring, batch in got:
                n = len(decode_span_columns(batch)) if spans else batch.count
                ring.commit(batch)
                with counter.get_lock():
                    counter.value += n
                if last_at is not None:
                    last_at.value = time.perf_counter()
            if not got and stop.is_set():
                c.discover()
                if all(r.drained() for r in c.rings.values()):
                    return
            time.sleep(CONSUMER_INTERVAL)
    finally:
        c.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- one measured run ------------------------------------------------------------------------
def measure(case: str, n: int) -> dict:
    ctx = mp.get_context("spawn")
    counter, ready, stop = ctx.Value("q", 0), ctx.Event(), ctx.Event()
    shm_dir = tempfile.mkdtemp(prefix="otelplug-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    env = {**os.environ, "OTELPLUG_SHM_DIR": shm_dir}
    env.pop("OTELPLUG_RING_CAPACITY", None)   # the default ring size is what we test
    endpoint, helper = None, None
    port = _free_port()
    if case == "http":
        helper = ctx.Process(target=http_sink, args=(port, counter, ready), daemon=True)
        endpoint = f"http://127.0.0.1:{port}/v1/traces"
    elif case == "grpc":
        helper = ctx.Process(target=grpc_sink, args=(port, counter, ready), daemon=True)
        endpoint = f"127.0.0.1:{port}"
    elif case == "shm":
        helper = ctx.Process(target=ring_consumer, args=(shm_dir, counter, ready, stop), daemon=True)
    try:
        if helper is not None:
            helper.start()
            if not ready.wait(30):
                raise RuntimeError(f"{case}: helper did not start")
        res = run_app_process(__file__, case, ["--spans", str(n)], endpoint, env)
        if case == "shm":
            stop.set()
            helper.join(30)
        else:
            time.sleep(0.3)   # the last export's response is already in; let counts settle
        res["delivered"] = counter.value if case != "none" else n
        res["dropped"] = n - res["delivered"]
        return res
    finally:
        if helper is not None and helper.is_alive():
            helper.terminate()
            helper.join(5)
        shutil.rmtree(shm_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--app", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the raw runs here")
    args = ap.parse_args()
    if args.app:
        print(json.dumps(run_app(args.app, args.spans, args.endpoint)))
        return

    cases = [c for c in args.cases.split(",") if c]
    print(f"# app_overhead: {args.spans} spans x {args.rounds} rounds; python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, loadavg {os.getloadavg()[0]:.2f}")
    runs = interleaved_rounds(cases, args.rounds, lambda case: measure(case, args.spans), args.spans, "span")
    med = {c: {k: statistics.median(r[k] for r in runs[c]) for k in ("cpu", "loop_wall", "delivered", "dropped")}
           for c in cases}
    n = args.spans
    print(f"\n| case | app CPU/span (us) | marginal (us) | loop wall (s) | delivered | dropped |")
    print("|---|---:|---:|---:|---:|---:|")
    base = med["none"]["cpu"] / n * 1e6 if "none" in med else None
    for c in cases:
        cpu = med[c]["cpu"] / n * 1e6
        marg = f"{cpu - base:.2f}" if base is not None and c != "none" else "-"
        print(f"| {LABEL[c]} | {cpu:.2f} | {marg} | {med[c]['loop_wall']:.2f} | "
              f"{med[c]['delivered']:.0f} | {med[c]['dropped']:.0f} |")
    if base is not None and "shm" in med:
        # marginal per round (each round's case minus the same round's baseline), then medians
        def marginals(c):
            return [(r["cpu"] - a["cpu"]) / n * 1e6 for r, a in zip(runs[c], runs["none"])]
        shm = statistics.median(marginals("shm"))
        print(f"\nmarginal CPU/span, median of per-round differences: shm {shm:.2f} us", end="")
        for c in ("http", "grpc"):
            if c in med:
                m = statistics.median(marginals(c))
                print(f"; {c} {m:.2f} us ({m / shm:.1f}x shm)", end="")
        print()
        for c in ("http", "grpc"):
            if c in med:
                ratio = (med[c]["cpu"] - med["none"]["cpu"]) / max(med["shm"]["cpu"] - med["none"]["cpu"], 1e-9)
                print(f"ratio of median marginals ({c}-a)/(b-a): {ratio:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
