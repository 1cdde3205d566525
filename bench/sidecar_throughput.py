"""The sidecar's CPU per span exporting OTLP/gRPC, and its maximum sustained
spans/s, beside the OTel Python SDK exporting the same spans itself
(BatchSpanProcessor + OTLPSpanExporter over gRPC).  A benchmark, not a test.

Processes (all on this machine, each its own process):

  sink       a minimal OTLP/gRPC TraceService: counts the spans of each
             request by walking the protobuf framing (no message objects),
             answers with an empty response.  Its CPU is not measured.
  sidecar    ``python -m otelplug.cli.main run --config <generated>``:
             shm receiver -> batch (8192, 200ms) -> otlp exporter
             (tls insecure, compression gzip or none) -> sink.
  producers  apps writing spans through ``otelplug.ShmSpanProcessor``:
             * fixed rate: real SDK spans (tracer, 8 attributes, 1 event, as
               bench/app_overhead.py) paced to --rate spans/s in total;
             * max rate: the same spans, made once by the SDK, then handed to
               ``ShmSpanProcessor.on_end`` as fast as the ring takes them
               (backing off 0.5 ms when it is full), so the producer does not
               limit the sidecar on a 2-core machine.
  sdk app    the same spans at --rate, interleaving windows with three
             TracerProviders: none (baseline), BatchSpanProcessor +
             OTLPSpanExporter (gRPC) without and with gzip.  Export CPU per
             span = (window CPU - baseline window CPU) / spans.

Sidecar CPU per span = psutil user+system of the sidecar pid over a window /
spans the sink received in it; windows start and end just after a batch
arrives at the sink, so they hold whole batches.  Each sidecar phase is
repeated (--repeats), runs interleaved; medians are reported.

    python bench/sidecar_throughput.py            # ~3 min
    python bench/sidecar_throughput.py --quick    # ~1 min
    python bench/sidecar_throughput.py --rate 20000 --window 20 --repeats 3
    python bench/sidecar_throughput.py --profile 10   # + py-spy record of the sidecar at max rate
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_RATE = 100_000     # spans/s on one core
# the Go Collector is measured beside the sidecar by bench/vs_collector.py


# -- the spans: the same everywhere ---------------------------------------------------------
ATTRS = {"http.request.method": "GET", "url.path": "/api/items/42", "http.route": "/api/items/{id}",
         "server.address": "example.internal", "server.port": 8080,
         "http.response.status_code": 200, "user_agent.original": "bench/1.0",
         "app.cache.hit": False}
EVENT_ATTRS = {"cache.key": "items:42"}


def _provider():
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    return TracerProvider(resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False)


def _one_span(tracer) -> None:
    with tracer.start_as_current_span("GET /api/items/{id}", attributes=ATTRS) as span:
        span.add_event("cache.lookup", EVENT_ATTRS)


def _paced(make, rate: float, seconds: float) -> int:
    """Call make() ``rate`` times a second for ``seconds``; returns calls."""
    t0 = time.perf_counter()
    n = 0
    while True:
        el = time.perf_counter() - t0
        if el >= seconds:
            return n
        target = int(el * rate) + 1
        while n < target:
            make()
            n += 1
        time.sleep(0.001)


# -- processes ---------------------------------------------------------------------------------
def _varint(b, pos):
    shift = v = 0
    while True:
        x = b[pos]
        pos += 1
        v |= (x & 0x7F) << shift
        if x < 0x80:
            return v, pos
        shift += 7


def _len_fields(b, pos, end, want):
    """(start, end) of each length-delimited field ``want`` in b[pos:end]."""
    while pos < end:
        key, pos = _varint(b, pos)
        wt = key & 7
        if wt == 2:
            n, pos = _varint(b, pos)
            if key >> 3 == want:
                yield pos, pos + n
            pos += n
        elif wt == 0:
            _, pos = _varint(b, pos)
        elif wt == 1:
            pos += 8
        elif wt == 5:
            pos += 4
        else:
            raise ValueError("bad wire type")


def count_spans(body: bytes) -> int:
    """Spans in a serialised ExportTraceServiceRequest, from the framing only:
    resource_spans (1) -> scope_spans (2) -> spans (2).  The innermost loop
    is inlined: the sink must stay cheap next to a sidecar doing 100k+/s on
    a 2-core machine."""
    n = 0
    for rs, rse in _len_fields(body, 0, len(body), 1):
        for pos, end in _len_fields(body, rs, rse, 2):
            while pos < end:
                key = body[pos]            # 0x0a scope, 0x12 span, 0x1a schema_url
                x = body[pos + 1]
                pos += 2
                ln = x & 0x7F
                shift = 7
                while x & 0x80:
                    x = body[pos]
                    pos += 1
                    ln |= (x & 0x7F) << shift
                    shift += 7
                if key == 0x12:
                    n += 1
                pos += ln
    return n


def sink(port, counter, ready):
    from concurrent import futures

    import grpc

    def export(body, context):
        n = count_spans(body)
        with counter.get_lock():
            counter.value += n
        return b""          # an empty ExportTraceServiceResponse

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(export)})
    server = grpc.server(futures.ThreadPoolExecutor(4), handlers=[handler],
                         options=[("grpc.max_receive_message_length", 256 << 20)])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.set()
    server.wait_for_termination()


def producer(shm_dir, mode, rate, seconds, out):
    """Write spans through ShmSpanProcessor; reports its own CPU and counts."""
    os.environ["OTELPLUG_SHM_DIR"] = shm_dir
    from otelplug import ShmSpanProcessor
    tp = _provider()
    tracer = tp.get_tracer("bench.app", "1.0")
    if mode == "rate":
        proc = ShmSpanProcessor()
        tp.add_span_processor(proc)
        cpu0 = time.process_time()
        n = _paced(lambda: _one_span(tracer), rate, seconds)
    else:
        # spans made once by the SDK, then replayed into the ring flat out
        from opentelemetry.sdk.trace import SpanProcessor

        class Keep(SpanProcessor):
            def __init__(self):
                self.spans = []

            def on_end(self, span):
                self.spans.append(span)
        keep = Keep()
        tp.add_span_processor(keep)
        for _ in range(1024):
            _one_span(tracer)
        proc = ShmSpanProcessor()
        spans = keep.spans
        cpu0 = time.process_time()
        t_end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < t_end:
            dropped = proc.dropped
            for s in spans:
                proc.on_end(s)
            n += len(spans)
            if proc.dropped != dropped:       # ring full: the sidecar is behind
                time.sleep(0.0005)
    out.put({"mode": mode, "n": n, "written": proc.written, "dropped": proc.dropped,
             "cpu": time.process_time() - cpu0})
    proc.shutdown()


def sdk_app(endpoint, counter, rate, window, rounds, out):
    """The SDK exporting itself: windows with a bare provider (baseline)
    and BatchSpanProcessor + OTLPSpanExporter (gRPC, compression none and
    gzip), interleaved; CPU per window from process_time (all threads).
    Export CPU per span = (window CPU - baseline CPU per span x spans made)
    / spans the sink received; spans the BSP dropped are counted apart."""
    import logging
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)   # "Queue full": counted below
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import Compression, OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    cases = {"base": _provider(), "bsp_none": _provider(), "bsp_gzip": _provider()}
    bsps = {}
    for name, comp in (("bsp_none", Compression.NoCompression), ("bsp_gzip", Compression.Gzip)):
        bsps[name] = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True,
                                                         compression=comp))
        cases[name].add_span_processor(bsps[name])
    tracers = {k: tp.get_tracer("bench.app", "1.0") for k, tp in cases.items()}
    for k, tr in tracers.items():       # warm up every path (imports, channels)
        for _ in range(600):
            _one_span(tr)
        if k in bsps:
            bsps[k].force_flush()
    res = {k: [] for k in cases}
    for _ in range(rounds):
        for k, tr in tracers.items():
            c0, e0 = time.process_time(), counter.value
            n = _paced(lambda: _one_span(tr), rate, window)
            if k in bsps:
                bsps[k].force_flush()     # its export CPU belongs to this window
            res[k].append({"cpu": time.process_time() - c0, "made": n, "exported": counter.value - e0})
    for tp in cases.values():
        tp.shutdown()
    out.put(res)


# -- the sidecar --------------------------------------------------------------------------------
CONFIG = """\
receivers:
  shm:
    channels: [""]
processors:
  batch:
    send_batch_size: 8192
    timeout: 200ms
exporters:
  otlp:
    endpoint: 127.0.0.1:{port}
    tls: {{insecure: true}}
    compression: {compression}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [shm]
      processors: [batch]
      exporters: [otlp]
"""


class Bench:
    def __init__(self, args):
        self.args = args
        self.ctx = mp.get_context("spawn")
        self.counter, ready = self.ctx.Value("q", 0), self.ctx.Event()
        self.port = _free_port()
        self.sink = self.ctx.Process(target=sink, args=(self.port, self.counter, ready), daemon=True)
        self.sink.start()
        if not ready.wait(30):
            raise RuntimeError("sink did not start")
        self.tmp = tempfile.mkdtemp(prefix="otelplug-bench-")

    def close(self):
        self.sink.terminate()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def count(self) -> int:
        return self.counter.value

    def _next_arrival(self, timeout=10.0) -> int:
        """Wait for the sink's count to change (a batch arrived)."""
        c = self.count()
        t_end = time.perf_counter() + timeout
        while time.perf_counter() < t_end:
            time.sleep(0.002)
            n = self.count()
            if n != c:
                return n
        return self.count()

    def _window(self, ps, seconds: float) -> dict:
        self._next_arrival()
        c0, t0 = self.count(), time.perf_counter()
        cpu0 = sum(ps.cpu_times()[:2])
        time.sleep(seconds)
        self._next_arrival()
        c1, t1 = self.count(), time.perf_counter()
        cpu1 = sum(ps.cpu_times()[:2])
        n = max(c1 - c0, 1)
        return {"spans": c1 - c0, "wall": t1 - t0, "cpu": cpu1 - cpu0,
                "us_per_span": (cpu1 - cpu0) / n * 1e6, "spans_per_s": (c1 - c0) / (t1 - t0),
                "cores": (cpu1 - cpu0) / (t1 - t0)}

    def sidecar_run(self, compression: str) -> dict:
        """One sidecar: a fixed-rate window, then a max-rate window."""
        import psutil
        a = self.args
        shm_dir = tempfile.mkdtemp(prefix="otelplug-bench-shm-",
                                   dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        cfg = os.path.join(self.tmp, f"sidecar-{compression}.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(port=self.port, compression=compression))
        env = {**os.environ, "OTELPLUG_SHM_DIR": shm_dir}
        env.pop("OTELPLUG_CHANNEL", None)
        side = subprocess.Popen([sys.executable, "-m", "otelplug.cli.main", "run", "--config", cfg,
                                 "--log-level", "warning"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        out = {}
        try:
            ps = psutil.Process(side.pid)
            q = self.ctx.Queue()
            # fixed rate
            warm = 3.0
            p = self.ctx.Process(target=producer,
                                 args=(shm_dir, "rate", a.rate, warm + a.window + 3.0, q))
            p.start()
            time.sleep(warm)
            out["rate"] = self._window(ps, a.window)
            p.join(60)
            out["rate"]["producer"] = q.get(timeout=10)
            time.sleep(1.0)
            # max rate
            p = self.ctx.Process(target=producer, args=(shm_dir, "max", 0, 2.0 + a.max_window + 2.0, q))
            p.start()
            time.sleep(2.0)
            if a.profile and compression == a.profile_compression:
                self._profile(side.pid, compression)
            out["max"] = self._window(ps, a.max_window)
            p.join(60)
            out["max"]["producer"] = q.get(timeout=10)
        finally:
            side.send_signal(signal.SIGTERM)
            try:
                _, err = side.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                side.kill()
                _, err = side.communicate()
            shutil.rmtree(shm_dir, ignore_errors=True)
        if side.returncode not in (0, -signal.SIGTERM):
            raise RuntimeError(f"sidecar exited {side.returncode}:\n{err.decode()[-3000:]}")
        errs = [ln for ln in err.decode().splitlines() if "ERROR" in ln or "Traceback" in ln]
        if errs:
            print(f"  sidecar stderr: {errs[:3]}", file=sys.stderr)
        return out

    def _profile(self, pid, compression):
        """py-spy record of the sidecar at max rate, next to the window."""
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            f"sidecar_profile_{compression}.txt")
        if not shutil.which("py-spy"):
            print("  (py-spy not installed: pip install py-spy)", file=sys.stderr)
            return
        r = subprocess.run(["py-spy", "record", "--pid", str(pid), "--duration", str(self.args.profile),
                            "--format", "raw", "--output", path, "--nonblocking", "--threads"],
                           capture_output=True, text=True)
        print(f"  py-spy ({r.returncode}): {path}", file=sys.stderr)

    def sdk_run(self) -> dict:
        a = self.args
        q = self.ctx.Queue()
        p = self.ctx.Process(target=sdk_app, args=(f"127.0.0.1:{self.port}", self.counter, a.rate,
                                                   a.sdk_window, a.repeats, q))
        p.start()
        res = q.get(timeout=600)
        p.join(30)
        return res


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _med(xs):
    return statistics.median(xs) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10_000, help="fixed producer rate, spans/s")
    ap.add_argument("--window", type=float, default=12.0, help="fixed-rate measuring window, s")
    ap.add_argument("--max-window", type=float, default=8.0, help="max-rate measuring window, s")
    ap.add_argument("--sdk-window", type=float, default=5.0, help="SDK app window per case, s")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compression", default="gzip,none", help="sidecar exporter compressions")
    ap.add_argument("--quick", action="store_true", help="one repeat, shorter windows")
    ap.add_argument("--profile", type=float, default=0, metavar="S",
                    help="also py-spy record the sidecar for S seconds at max rate")
    ap.add_argument("--profile-compression", default="none")
    ap.add_argument("--no-sdk", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.window, args.max_window, args.sdk_window = 1, 8.0, 6.0, 4.0
    comps = [c for c in args.compression.split(",") if c]

    print(f"# sidecar throughput: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load avg {os.getloadavg()[0]:.2f}")
    b = Bench(args)
    runs = {c: [] for c in comps}
    sdk = None
    t_start = time.perf_counter()
    try:
        for rep in range(args.repeats):
            for c in comps:
                r = b.sidecar_run(c)
                runs[c].append(r)
                print(f"  rep {rep + 1} {c:5s}: {args.rate:.0f}/s -> {r['rate']['us_per_span']:.2f} us/span "
                      f"({r['rate']['spans_per_s']:.0f}/s, {r['rate']['cores']:.2f} cores); max -> "
                      f"{r['max']['spans_per_s']:.0f} spans/s, {r['max']['us_per_span']:.2f} us/span, "
                      f"{r['max']['cores']:.2f} cores, producer dropped {r['max']['producer']['dropped']}",
                      file=sys.stderr)
        if not args.no_sdk:
            sdk = b.sdk_run()
    finally:
        b.close()
    elapsed = time.perf_counter() - t_start

    print(f"\nload avg after: {os.getloadavg()[0]:.2f}; {elapsed:.0f} s; medians of {args.repeats} run(s)\n")
    print("| sidecar (shm -> batch -> otlp/gRPC) | compression | CPU us/span @ %d/s | cores @ %d/s | "
          "max spans/s measured | CPU us/span @ max | cores @ max | "
          "one-core capacity (1/CPU per span) |" % (args.rate, args.rate))
    print("|---|---|---|---|---|---|---|---|")
    side_us = {}
    for c in comps:
        rs = runs[c]
        us = _med([r["rate"]["us_per_span"] for r in rs])
        us_max = _med([r["max"]["us_per_span"] for r in rs])
        side_us[c] = us
        print(f"| otelplug sidecar | {c} | {us:.2f} | {_med([r['rate']['cores'] for r in rs]):.3f} | "
              f"{_med([r['max']['spans_per_s'] for r in rs]):,.0f} | "
              f"{us_max:.2f} | {_med([r['max']['cores'] for r in rs]):.2f} | {1e6 / us_max:,.0f}/s |")
    print("\n(the Go Collector on the same spans and sink: python bench/vs_collector.py)")
    if sdk:
        base = _med([w["cpu"] / w["made"] for w in sdk["base"]])
        print(f"\n| OTel Python SDK in the app, same spans @ {args.rate:.0f}/s | export CPU us/span "
              f"| spans dropped by the BSP | vs sidecar (same compression) |")
        print("|---|---|---|---|")
        for k, c in (("bsp_none", "none"), ("bsp_gzip", "gzip")):
            ws = sdk[k]
            us = _med([(w["cpu"] - base * w["made"]) / max(w["exported"], 1) for w in ws]) * 1e6
            dropped = sum(max(w["made"] - w["exported"], 0) for w in ws)
            made = sum(w["made"] for w in ws)
            ratio = f"{us / side_us[c]:.1f}x the sidecar" if c in side_us else ""
            print(f"| BatchSpanProcessor + OTLPSpanExporter gRPC, {c} | {us:.2f} | "
                  f"{dropped:,} of {made:,} | {ratio} |")
        print(f"\nbaseline: creating and ending one span in the app, no processor: {base * 1e6:.1f} us")
    print(f"\ntarget: >= {TARGET_RATE:,} spans/s on one core")
    if any(r["max"]["producer"]["dropped"] == 0 for c in comps for r in runs[c]):
        print("note: a max-rate producer never found its ring full: the producer, not the sidecar, "
              "limited that run", file=sys.stderr)


if __name__ == "__main__":
    main()
