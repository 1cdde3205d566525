"""otelplug against the real OpenTelemetry Collector, measured in the same
run on the same machine.  A benchmark, not a test.

The spans are bench/sidecar_throughput.py's (8 attributes, 1 event), the
destination is its counting OTLP/gRPC sink, the export compression is the
same on both sides (gzip and none, in separate runs), and the runs of the
different paths are interleaved so neighbours' load hits all of them.

1. Host CPU per span, app + agent, the app making real SDK spans at
   --app-rate spans/s:
     collector path: app -> BatchSpanProcessor + OTLPSpanExporter (gRPC)
                     -> Collector (otlp -> batch -> otlp) -> sink
     otelplug path:  app -> ShmSpanProcessor -> otelplug sidecar
                     (shm -> batch -> otlp) -> sink
   = CPU of the app and agent processes over a window / spans the sink got.
   "Export share" subtracts the app's CPU per span with no processor at
   all (measured in the same run): what getting spans out costs.
2. Agent CPU per span at --rate spans/s and at the maximum sustained rate:
     Collector:               OTLP in -> batch -> OTLP out
     otelplug sidecar, shm:   shm in -> batch -> OTLP out
     otelplug sidecar, OTLP:  OTLP in -> batch -> OTLP out
   OTLP in comes from a load process sending pre-encoded requests of 256
   spans (the SDK's encoding of the same spans), paced, or back to back
   from two threads for the maximum; shm in from sidecar_throughput's
   producer (paced SDK spans, or replayed flat out).
3. Agent RSS after the --rate window.

The Collector is the one tests/peers builds (``python -m tests.peers
build collector``).

    python bench/vs_collector.py              # ~5 min (1 repeat)
    python bench/vs_collector.py --repeats 2  # ~10 min
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import sidecar_throughput as st  # noqa: E402  (the spans, the sink, the shm producer)

from tests.peers.build import collector_binary  # noqa: E402

REQUEST_SPANS = 256
BATCH = "send_batch_size: 8192\n    timeout: 200ms"


# -- OTLP load: the SDK's encoding of the same spans ---------------------------------------
def _encoded_request() -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    mem = InMemorySpanExporter()
    tp = st._provider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("bench.app", "1.0")
    for _ in range(REQUEST_SPANS):
        st._one_span(tracer)
    return encode_spans(mem.get_finished_spans()).SerializeToString()


def otlp_load(port: int, rate: float, seconds: float, out) -> None:
    """Send the request ``rate / REQUEST_SPANS`` times a second, or (rate 0)
    back to back from two threads; reports spans accepted and refused."""
    import grpc
    body = _encoded_request()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                               request_serializer=None, response_deserializer=None)
    counts = {"sent": 0, "refused": 0}
    lock = threading.Lock()
    t_end = time.perf_counter() + seconds

    def one():
        try:
            call(body, timeout=10)
            key = "sent"
        except grpc.RpcError:
            key = "refused"
        with lock:
            counts[key] += REQUEST_SPANS

    if rate:
        st._paced(one, rate / REQUEST_SPANS, seconds)
    else:
        def loop():
            while time.perf_counter() < t_end:
                one()
        threads = [threading.Thread(target=loop) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    channel.close()
    out.put(counts)


def bare_app(rate: float, seconds: float, out) -> None:
    """The same spans with no processor: the app's own cost, the baseline."""
    tp = st._provider()
    tracer = tp.get_tracer("bench.app", "1.0")
    out.put({"made": st._paced(lambda: st._one_span(tracer), rate, seconds)})


def bsp_app(port: int, compression: str, rate: float, seconds: float, out) -> None:
    """The app exporting itself: BatchSpanProcessor + OTLPSpanExporter (gRPC)."""
    import logging
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)   # "Queue full": counted by the sink
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import Compression, OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    tp = st._provider()
    comp = Compression.Gzip if compression == "gzip" else Compression.NoCompression
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}",
                                                              insecure=True, compression=comp)))
    tracer = tp.get_tracer("bench.app", "1.0")
    n = st._paced(lambda: st._one_span(tracer), rate, seconds)
    tp.shutdown()
    out.put({"made": n})


# -- agents ------------------------------------------------------------------------------------
def agent_config(receiver: str, port: int, sink_port: int, compression: str) -> str:
    """One YAML for the Collector and the sidecar: the receiver (otlp, or
    otelplug's shm), batch, the otlp exporter to the sink."""
    rx = ("shm: {channels: ['']}" if receiver == "shm"
          else f"otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:{port}}}}}}}")
    return f"""
receivers:
  {rx}
processors:
  batch:
    {BATCH}
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink_port}
    tls: {{insecure: true}}
    compression: {compression}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [{receiver}], processors: [batch], exporters: [otlp]}}
"""


class Agent:
    """A Collector or otelplug sidecar process for one run."""

    def __init__(self, kind: str, compression: str, sink_port: int, tmp: str):
        self.kind, self.port = kind, st._free_port()
        self.shm_dir = tempfile.mkdtemp(prefix="otelplug-vs-",
                                        dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        cfg = os.path.join(tmp, f"{kind}-{compression}.yaml")
        env = {**os.environ, "OTELPLUG_SHM_DIR": self.shm_dir}
        env.pop("OTELPLUG_CHANNEL", None)
        receiver = "shm" if kind == "otelplug-shm" else "otlp"
        text = agent_config(receiver, self.port, sink_port, compression)
        if kind == "collector":
            argv = [str(collector_binary())]
        else:
            argv = [sys.executable, "-m", "otelplug.cli.main", "run", "--log-level", "warning"]
        with open(cfg, "w") as f:
            f.write(text)
        self.proc = subprocess.Popen(argv + ["--config", cfg], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        if kind != "otelplug-shm":
            self._wait_port()
        else:
            time.sleep(1.5)      # the sidecar's start-up; the producer's ring is found when it appears

    def _wait_port(self, timeout=60.0):
        import socket
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not listen on {self.port}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.shm_dir, ignore_errors=True)


class Bench(st.Bench):
    """sidecar_throughput's sink and arrival-aligned windows, over several
    processes' CPU."""

    def window(self, procs, seconds: float) -> dict:
        self._next_arrival()
        c0, t0 = self.count(), time.perf_counter()
        cpu0 = sum(sum(p.cpu_times()[:2]) for p in procs)
        time.sleep(seconds)
        self._next_arrival()
        c1, t1 = self.count(), time.perf_counter()
        cpu1 = sum(sum(p.cpu_times()[:2]) for p in procs)
        n = max(c1 - c0, 1)
        return {"spans": c1 - c0, "us_per_span": (cpu1 - cpu0) / n * 1e6,
                "spans_per_s": (c1 - c0) / (t1 - t0), "cores": (cpu1 - cpu0) / (t1 - t0)}

    def _feed(self, agent: Agent, rate: float, seconds: float):
        q = self.ctx.Queue()
        if agent.kind == "otelplug-shm":
            p = self.ctx.Process(target=st.producer, args=(agent.shm_dir, "rate" if rate else "max",
                                                           rate, seconds, q))
        else:
            p = self.ctx.Process(target=otlp_load, args=(agent.port, rate, seconds, q))
        p.start()
        return p, q

    def agent_run(self, kind: str, compression: str) -> dict:
        """(2) and (3): a --rate window, then a max-rate window."""
        import psutil
        a = self.args
        agent = Agent(kind, compression, self.port, self.tmp)
        out = {}
        try:
            ps = psutil.Process(agent.proc.pid)
            warm = 3.0
            p, q = self._feed(agent, a.rate, warm + a.window + 3.0)
            time.sleep(warm)
            out["rate"] = self.window([ps], a.window)
            out["rss_mib"] = ps.memory_info().rss / 2**20
            p.join(120)
            time.sleep(0.5)
            p, q = self._feed(agent, 0, 2.0 + a.max_window + 2.0)
            time.sleep(2.0)
            out["max"] = self.window([ps], a.max_window)
            p.join(120)
        finally:
            agent.stop()
        return out

    def bare_run(self) -> float:
        """App CPU per span with no processor (the baseline of (1))."""
        import psutil
        a = self.args
        q = self.ctx.Queue()
        app = self.ctx.Process(target=bare_app, args=(a.app_rate, 3.0 + a.window + 1.0, q))
        app.start()
        time.sleep(3.0)
        ps = psutil.Process(app.pid)
        c0, t0 = sum(ps.cpu_times()[:2]), time.perf_counter()
        time.sleep(a.window)
        c1, t1 = sum(ps.cpu_times()[:2]), time.perf_counter()
        app.join(60)
        return (c1 - c0) / (a.app_rate * (t1 - t0)) * 1e6

    def host_run(self, path: str, compression: str) -> dict:
        """(1): app + agent CPU per span at --app-rate."""
        import psutil
        a = self.args
        kind = "collector" if path == "collector" else "otelplug-shm"
        agent = Agent(kind, compression, self.port, self.tmp)
        try:
            q = self.ctx.Queue()
            seconds = 3.0 + a.window + 3.0
            if path == "collector":
                app = self.ctx.Process(target=bsp_app, args=(agent.port, compression, a.app_rate,
                                                            seconds, q))
            else:
                app = self.ctx.Process(target=st.producer, args=(agent.shm_dir, "rate", a.app_rate,
                                                                seconds, q))
            app.start()
            time.sleep(3.0)
            procs = [psutil.Process(agent.proc.pid), psutil.Process(app.pid)]
            res = self.window(procs, a.window)
            app.join(120)
        finally:
            agent.stop()
        return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10_000, help="agent comparison rate, spans/s")
    ap.add_argument("--app-rate", type=float, default=5_000,
                    help="host comparison rate, spans/s (the SDK's BatchSpanProcessor drops above ~8k/s here)")
    ap.add_argument("--window", type=float, default=8.0)
    ap.add_argument("--max-window", type=float, default=6.0)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--compression", default="gzip,none")
    args = ap.parse_args()
    if not collector_binary().exists():
        sys.exit(f"no Collector at {collector_binary()}: run `python -m tests.peers build collector`")
    comps = [c for c in args.compression.split(",") if c]
    kinds = ["collector", "otelplug-shm", "otelplug-otlp"]
    print(f"# vs_collector: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load avg {os.getloadavg()[0]:.2f}; Collector {collector_binary()}")
    b = Bench(args)
    agent = {(k, c): [] for k in kinds for c in comps}
    host = {(p, c): [] for p in ("collector", "otelplug") for c in comps}
    bare = []
    t0 = time.perf_counter()
    try:
        for rep in range(args.repeats):
            for c in comps:
                for k in kinds:
                    r = b.agent_run(k, c)
                    agent[(k, c)].append(r)
                    print(f"  rep {rep + 1} {k:14s} {c:5s}: {args.rate:.0f}/s -> "
                          f"{r['rate']['us_per_span']:.2f} us/span ({r['rate']['spans_per_s']:.0f}/s), "
                          f"RSS {r['rss_mib']:.0f} MiB; max {r['max']['spans_per_s']:.0f}/s at "
                          f"{r['max']['us_per_span']:.2f} us/span", file=sys.stderr)
                bare.append(b.bare_run())
                print(f"  rep {rep + 1} app alone: {bare[-1]:.2f} us/span", file=sys.stderr)
                for p in ("collector", "otelplug"):
                    r = b.host_run(p, c)
                    host[(p, c)].append(r)
                    print(f"  rep {rep + 1} host {p:9s} {c:5s}: {r['us_per_span']:.2f} us/span "
                          f"({r['spans_per_s']:.0f}/s delivered)", file=sys.stderr)
    finally:
        b.close()
    med = st._med
    print(f"\nload avg after: {os.getloadavg()[0]:.2f}; {time.perf_counter() - t0:.0f} s; "
          f"medians of {args.repeats} run(s)\n")
    base = med(bare)
    print(f"(1) host CPU per span, app + agent, app at {args.app_rate:.0f} spans/s; the app alone "
          f"(no processor) {base:.2f} us/span\n")
    print("| compression | collector path us/span | otelplug path us/span | otelplug / collector "
          "| export share collector | export share otelplug | otelplug / collector "
          "| delivered/s collector | delivered/s otelplug |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in comps:
        col, ours = host[("collector", c)], host[("otelplug", c)]
        uc, uo = med([r["us_per_span"] for r in col]), med([r["us_per_span"] for r in ours])
        print(f"| {c} | {uc:.2f} | {uo:.2f} | {uo / uc:.2f} | {uc - base:.2f} | {uo - base:.2f} | "
              f"{(uo - base) / (uc - base):.2f} | "
              f"{med([r['spans_per_s'] for r in col]):,.0f} | {med([r['spans_per_s'] for r in ours]):,.0f} |")
    print(f"\n(2)+(3) agent CPU per span at {args.rate:.0f} spans/s and at the maximum; RSS at "
          f"{args.rate:.0f} spans/s\n")
    print(f"| agent | compression | us/span @ {args.rate:.0f}/s | / Collector | max spans/s | "
          f"us/span @ max | / Collector | RSS MiB | / Collector |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for c in comps:
        base = agent[("collector", c)]
        bu = med([r["rate"]["us_per_span"] for r in base])
        bm = med([r["max"]["us_per_span"] for r in base])
        br = med([r["rss_mib"] for r in base])
        for k in kinds:
            rs = agent[(k, c)]
            u = med([r["rate"]["us_per_span"] for r in rs])
            um = med([r["max"]["us_per_span"] for r in rs])
            rss = med([r["rss_mib"] for r in rs])
            print(f"| {k} | {c} | {u:.2f} | {u / bu:.2f} | {med([r['max']['spans_per_s'] for r in rs]):,.0f} "
                  f"| {um:.2f} | {um / bm:.2f} | {rss:.0f} | {rss / br:.2f} |")


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
