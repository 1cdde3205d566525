"""What a contract event costs the app, and how many events two producer
processes get into their rings.  A benchmark, not a test.

Part 1, CPU per event, each case in a fresh process (interleaved, repeated):

  emitter  the generated emitter (otelplug/demo/contract_events.py) into the
           ring: consensus_proposed(vertex, proposed_color, confidence,
           usage_gpu_pct), i.e. 4 attributes, types and constraints checked
  shm      the same event (event name, severity, the 4 attributes) through
           the SDK: Logger.emit + ShmLogRecordProcessor
  batch    the same through the SDK: Logger.emit + BatchLogRecordProcessor +
           OTLP/gRPC log exporter -> a local sink process

Every event is emitted inside an active span (its trace context goes on the
record).  A consumer process drains the rings meanwhile (the sink counts the
OTLP case).  Reported: app CPU per event (loop + final flush, all threads),
delivered and dropped, and the ratios against the emitter.

Part 2, events/s from 2 producer processes through the emitter, lossless:
each producer writes ``--events`` events as fast as it can; the rings are
sized to hold them all (``OTELPLUG_RING_CAPACITY``) so nothing waits or
drops, and one consumer process drains both meanwhile.  Rate = events
received / wall time from the release of the producers to the last event
received; received == sent is checked.

    python bench/events.py                      # 100k events x 5 rounds, 2 x 500k
    python bench/events.py --events 50000 --rounds 3 --throughput-events 200000
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import tempfile
import time

from _rounds import interleaved_rounds, run_app_process  # same folder: `python bench/events.py`
from app_overhead import _free_port, grpc_sink, ring_consumer

CASES = ("emitter", "shm", "batch")
LABEL = {"emitter": "generated emitter -> ring", "shm": "SDK Logger + ShmLogRecordProcessor",
         "batch": "SDK Logger + BatchLogRecordProcessor + OTLP/gRPC"}
ATTRS = {"consensus.vertex": 17, "consensus.proposed_color": 3, "consensus.confidence": 0.8,
         "usage.gpu_pct": 87.0}


# -- the app process --------------------------------------------------------------------------
def run_app(case: str, n: int, endpoint: str | None) -> dict:
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("bench")
    resource = {"service.name": "bench", "adapter.component": "consensus_engine"}
    flush = None
    if case == "emitter":
        from otelplug.demo import contract_events as ev
        events = ev.Events(adapter_component=ev.AdapterComponent.CONSENSUS_ENGINE,
                           resource_attributes={"service.name": "bench"})

        def emit() -> None:
            events.consensus_proposed(vertex=17, proposed_color=3, confidence=0.8, usage_gpu_pct=87.0)
        flush = events.close
    else:
        from opentelemetry.sdk._logs import LoggerProvider
        provider = LoggerProvider(resource=Resource.create(resource), shutdown_on_exit=False)
        if case == "shm":
            from otelplug import ShmLogRecordProcessor
            provider.add_log_record_processor(ShmLogRecordProcessor())
        else:
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
            provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint,
                                                                                      insecure=True)))
        logger = provider.get_logger("otelplug")

        def emit() -> None:
            logger.emit(event_name="consensus.proposed", severity_number=SeverityNumber.DEBUG,
                        severity_text="DEBUG", attributes=ATTRS)
        flush = provider.shutdown
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with tracer.start_as_current_span("step"):
        for _ in range(n):
            emit()
    loop_wall = time.perf_counter() - wall0
    flush()
    return {"case": case, "cpu": time.process_time() - cpu0, "loop_wall": loop_wall}


# -- helpers (the ring consumer and the OTLP sink are app_overhead's) -----------------------------------------------------------
def _shm_dir() -> str:
    return tempfile.mkdtemp(prefix="otelplug-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


# -- part 1: one measured run -----------------------------------------------------------------------
def measure(case: str, n: int) -> dict:
    ctx = mp.get_context("spawn")
    counter, ready, stop = ctx.Value("q", 0), ctx.Event(), ctx.Event()
    shm_dir = _shm_dir()
    env = {**os.environ, "OTELPLUG_SHM_DIR": shm_dir}
    env.pop("OTELPLUG_RING_CAPACITY", None)   # the default ring
    endpoint = None
    if case == "batch":
        port = _free_port()
        helper = ctx.Process(target=grpc_sink, args=(port, counter, ready, "logs"), daemon=True)
        endpoint = f"127.0.0.1:{port}"
    else:
        helper = ctx.Process(target=ring_consumer, args=(shm_dir, counter, ready, stop, None, False), daemon=True)
    try:
        helper.start()
        if not ready.wait(30):
            raise RuntimeError(f"{case}: helper did not start")
        res = run_app_process(__file__, case, ["--events", str(n)], endpoint, env)
        if case == "batch":
            time.sleep(0.3)   # shutdown waited for the last export; let the count settle
        else:
            stop.set()
            helper.join(30)
        res["delivered"] = counter.value
        res["dropped"] = n - res["delivered"]
        return res
    finally:
        if helper.is_alive():
            helper.terminate()
            helper.join(5)
        shutil.rmtree(shm_dir, ignore_errors=True)


# -- part 2: throughput from 2 producers ----------------------------------------------------------------
def producer(shm_dir, n, go, ready, sent):
    os.environ["OTELPLUG_SHM_DIR"] = shm_dir
    from otelplug.demo import contract_events as ev
    events = ev.Events(adapter_component=ev.AdapterComponent.THERMODYNAMIC)
    emit = events.performance_checkpoint
    emit(phase="warm-up", elapsed_ms=0.0, progress_pct=0.0)  # creates the ring and its definitions
    ready.release()
    go.wait()
    ok = 0
    cpu0 = time.process_time()
    for i in range(n):
        ok += emit(phase="annealing", elapsed_ms=1.5, progress_pct=50.0, usage_memory_mb=512)
    sent.put((ok, events.stats()["dropped"], time.process_time() - cpu0))
    events.close()


def throughput(n_per_producer: int, producers: int = 2) -> dict:
    ctx = mp.get_context("spawn")
    shm_dir = _shm_dir()
    # room for everything: the producers never wait and never drop
    capacity = 1 << max(24, (n_per_producer * 256).bit_length())
    os.environ["OTELPLUG_RING_CAPACITY"] = str(capacity)
    counter, ready_c, stop = ctx.Value("q", 0), ctx.Event(), ctx.Event()
    last_at = ctx.Value("d", 0.0)
    go, ready, sent = ctx.Event(), ctx.Semaphore(0), ctx.Queue()
    consumer = ctx.Process(target=ring_consumer, args=(shm_dir, counter, ready_c, stop, last_at, False), daemon=True)
    procs = [ctx.Process(target=producer, args=(shm_dir, n_per_producer, go, ready, sent), daemon=True)
             for _ in range(producers)]
    try:
        consumer.start()
        ready_c.wait(30)
        for p in procs:
            p.start()
        for _ in procs:
            ready.acquire(timeout=60)
        warm = producers
        deadline = time.monotonic() + 30
        while counter.value < warm and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.perf_counter()
        go.set()
        results = [sent.get(timeout=600) for _ in procs]
        total = sum(r[0] for r in results) + warm
        deadline = time.monotonic() + 120
        while counter.value < total and time.monotonic() < deadline:
            time.sleep(0.005)
        received = counter.value - warm
        stop.set()
        consumer.join(30)
        events = n_per_producer * producers
        return {"events": events, "sent": sum(r[0] for r in results), "dropped": sum(r[1] for r in results),
                "producer_cpu_per_event": sum(r[2] for r in results) / events,
                "received": received, "seconds": last_at.value - t0,
                "rate": received / max(last_at.value - t0, 1e-9), "capacity": capacity}
    finally:
        os.environ.pop("OTELPLUG_RING_CAPACITY", None)
        for p in procs + [consumer]:
            if p.is_alive():
                p.terminate()
                p.join(5)
        shutil.rmtree(shm_dir, ignore_errors=True)


# -- part 3: the sidecar checking and encoding these events -------------------------------------------
def event_corpus(count: int):
    """``count`` varied, valid contract events as the sidecar reads them:
    emitted in this process into a ring, read back with their definitions."""
    import random

    import numpy as np
    from semconv_overhead import Corpus

    shm_dir = _shm_dir()
    os.environ["OTELPLUG_SHM_DIR"] = shm_dir
    os.environ["OTELPLUG_RING_CAPACITY"] = str(1 << 26)
    try:
        from otelplug.demo import contract_events as ev
        from otelplug.ring import ChannelConsumer
        rng = random.Random(7)
        events = ev.Events(adapter_component=ev.AdapterComponent.QUANTUM_PIMC)
        for i in range(count):
            kind = i % 4
            if kind == 0:
                events.consensus_proposed(vertex=rng.randrange(1000), proposed_color=rng.randrange(16),
                                          confidence=rng.random(), usage_gpu_pct=rng.uniform(0, 100))
            elif kind == 1:
                events.performance_checkpoint(phase=f"annealing_T_{rng.random():.2f}", elapsed_ms=rng.uniform(0, 1e4),
                                              progress_pct=rng.uniform(0, 100))
            elif kind == 2:
                events.memory_allocation(bytes=rng.randrange(1 << 30), purpose="adjacency matrix")
            else:
                events.token_generated(generation_stream_id=f"s-{rng.randrange(100)}", text="tok",
                                       logprob=-rng.random())
        payloads, defs = [], {}
        with ChannelConsumer() as consumer:
            while len(payloads) < count:
                for ring, batch in consumer.poll():
                    defs.update(ring.definitions())
                    payloads += [bytes(p) for _t, p in batch]
                    ring.commit(batch)
        events.close()
        return Corpus(payloads, defs, np.zeros(len(payloads), np.int64))
    finally:
        os.environ.pop("OTELPLUG_RING_CAPACITY", None)
        shutil.rmtree(shm_dir, ignore_errors=True)


def part3(args: argparse.Namespace) -> None:
    from pathlib import Path

    from semconv_overhead import run_direct

    corpus = event_corpus(8192)
    registry = str(Path(__file__).resolve().parents[1] / "semconv")
    print(f"\n# sidecar: {len(corpus.payloads)} varied contract events (4 kinds), batches of 2048, "
          f"semconv processor (registry semconv/) + OTLP encoding vs OTLP encoding alone, one thread; "
          f"loadavg {os.getloadavg()[0]:.2f}")
    for rnd in range(args.sidecar_rounds):
        r = run_direct(corpus, args.sidecar_events, registry, encode=True, signal="logs")
        plain, checked = r[False]["cpu_us"], r[True]["cpu_us"]
        print(f"  round {rnd + 1}: encode only {plain:.2f} us/event ({1e6 / plain:,.0f}/s), "
              f"checked + encoded {checked:.2f} us/event ({1e6 / checked:,.0f}/s on one core)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="events per app run (part 1)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--throughput-events", type=int, default=500_000, help="events per producer (part 2)")
    ap.add_argument("--throughput-rounds", type=int, default=3)
    ap.add_argument("--sidecar-events", type=int, default=400_000, help="events per sidecar round (part 3)")
    ap.add_argument("--sidecar-rounds", type=int, default=3)
    ap.add_argument("--app", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.app:
        print(json.dumps(run_app(args.app, args.events, args.endpoint)))
        return

    cases = [c for c in args.cases.split(",") if c]
    if cases:
        part1(args, cases)
    if args.throughput_rounds:
        part2(args)
    if args.sidecar_rounds:
        part3(args)


def part1(args: argparse.Namespace, cases: list[str]) -> None:
    print(f"# events: {args.events} events x {args.rounds} rounds; python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, loadavg {os.getloadavg()[0]:.2f}")
    runs = interleaved_rounds(cases, args.rounds, lambda case: measure(case, args.events), args.events, "event")
    n = args.events
    med = {c: {k: statistics.median(r[k] for r in runs[c]) for k in ("cpu", "delivered", "dropped")} for c in cases}
    print("\n| case | app CPU/event (us) | x emitter | delivered | dropped |")
    print("|---|---:|---:|---:|---:|")
    base = med["emitter"]["cpu"] if "emitter" in med else None
    for c in cases:
        ratio = f"{med[c]['cpu'] / base:.1f}x" if base else "-"
        print(f"| {LABEL[c]} | {med[c]['cpu'] / n * 1e6:.2f} | {ratio} | {med[c]['delivered']:.0f} | "
              f"{med[c]['dropped']:.0f} |")
    if base and len(cases) > 1:
        # per round: each case over the same round's emitter run, then medians
        for c in cases[1:]:
            per_round = [r["cpu"] / e["cpu"] for r, e in zip(runs[c], runs["emitter"])]
            print(f"{c}/emitter CPU, median of per-round ratios: {statistics.median(per_round):.1f}x")



def part2(args: argparse.Namespace) -> None:
    print(f"\n# throughput: 2 producer processes x {args.throughput_events} events, lossless; "
          f"loadavg {os.getloadavg()[0]:.2f}")
    rates = []
    for rnd in range(args.throughput_rounds):
        t = throughput(args.throughput_events)
        if t["received"] != t["events"] or t["dropped"]:
            raise SystemExit(f"not lossless: {t}")
        rates.append(t["rate"])
        print(f"  round {rnd + 1}: {t['received']} events in {t['seconds']:.2f} s = {t['rate']:,.0f} events/s "
              f"(dropped {t['dropped']}, ring {t['capacity'] >> 20} MiB each; producer CPU "
              f"{t['producer_cpu_per_event'] * 1e6:.2f} us/event)", flush=True)
    print(f"median: {statistics.median(rates):,.0f} events/s from 2 producers, lossless")


if __name__ == "__main__":
    main()
