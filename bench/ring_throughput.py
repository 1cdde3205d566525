"""Ring throughput (issue 2): records per second from N producer processes
to one consumer process, the otelplug ring against multiprocessing.Queue and
faster-fifo, measured side by side in the same run.

What is measured
    Every producer process writes the same 200-byte ``bytes`` record from a
    plain Python loop; one consumer process receives everything.  Throughput
    is records received by the consumer divided by the wall time from the
    moment all producers are released (after every channel is set up and a
    warm-up record per producer has arrived) to the arrival of the last
    record.  The ratio column divides the ring's median by the peer's median
    of the same producer count and write style (single or batched), measured
    in the same run, so machine noise largely cancels.

Each mechanism is used in its natural best way
    ring            Producer.write_wait(rtype, rec, timeout) - waits (bounded)
                    for room, so nothing is lost; the consumer polls, counts
                    ``batch.count`` and commits: columns, never per record.
    ring nowait     Producer.write: never blocks, drops when full; dropped
                    records are counted and reported.
    ring many/64    Producer.write_many in batches of 64 (one publish each).
    mp.Queue        put() blocks when full (maxsize bounds it); get() per item.
    mp.Queue list/64  batched-put variant: put() a list of 64 records.
    faster-fifo     put() per record, consumer get_many().
    faster-fifo many/64  put_many() of 64 records, consumer get_many().

    Buffer memory is the same for all: each ring has ``--capacity`` bytes;
    the shared queues get ``capacity * producers`` (faster-fifo bytes,
    mp.Queue a record count of the same size).

CPU cost per write
    Each producer takes ``time.process_time()`` around its write loop (for
    mp.Queue after the feeder thread has flushed, since its pickling and
    pipe writes are app-process CPU too) and the table shows CPU ns per
    record.  That includes the Python ``for`` loop (~15 ns) and, on this
    oversubscribed machine, cache misses caused by the consumer.  A separate
    in-process section measures the bare cost of one 200-byte write into a
    warm ring, with no other process competing.

Run counts differ per mechanism (the slow peers get fewer records) so every
run lasts a similar time; rates are per record so this does not favour
anyone.  Each configuration runs ``--repeats`` times, interleaved, and the
median is reported.

    python bench/ring_throughput.py            # full run, ~40-100 s (load-dependent)
    python bench/ring_throughput.py --quick    # ~10-30 s
    python bench/ring_throughput.py --records 4000000 --repeats 5
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import queue as queue_mod
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import faster_fifo

from otelplug.ring import ChannelConsumer, Producer
from otelplug.ring.layout import HEADER_SIZE, read_header

RECORD = bytes(range(200))          # the same 200-byte payload for everyone
RTYPE = 1
BATCH = 64
WAIT_TIMEOUT = 10.0                 # write_wait bound: long enough never to drop here
POLL_TIMEOUT = 0.05                 # peers' blocking get timeout, so the loop can re-check
RUN_TIMEOUT = 120.0                 # a hung run fails loudly instead of hanging the bench
CTX = mp.get_context("fork")        # Linux default; children inherit queues and module state


# --------------------------------------------------------------------------
# Mechanisms: how a producer sends n records and how the consumer takes them.
# A sender writes n records and returns how many the mechanism accepted; a
# ``take`` is one natural receive call and returns how many records it got
# (0 when it timed out or found nothing).
# --------------------------------------------------------------------------

@dataclass
class RingChannel:
    """Where the rings of one run live (a unique channel per run)."""
    channel: str
    directory: Path
    capacity: int


def _ring_producer(ch: RingChannel) -> Producer:
    p = Producer(ch.channel, capacity=ch.capacity, shm_directory=ch.directory)
    p.write(RTYPE, RECORD)          # warm-up: creates and publishes the ring
    return p


def ring_send_wait(p: Producer, n: int) -> int:
    write_wait = p.write_wait
    dropped = 0
    for _ in range(n):
        if not write_wait(RTYPE, RECORD, WAIT_TIMEOUT):
            dropped += 1
    return n - dropped


def ring_send_nowait(p: Producer, n: int) -> int:
    write = p.write
    dropped = 0
    for _ in range(n):
        if not write(RTYPE, RECORD):
            dropped += 1
    return n - dropped


def ring_send_many(p: Producer, n: int) -> int:
    write_many = p.write_many
    batch = [RECORD] * BATCH
    sent = 0
    for _ in range(n // BATCH):
        sent += write_many(RTYPE, batch)
    return sent


def ring_wait_stats(p: Producer) -> tuple[int, float]:
    """(times write_wait had to sleep, seconds slept) from the ring header:
    tells whether a producer was held back by a full ring."""
    with open(p.path, "rb") as f:
        h = read_header(f.read(HEADER_SIZE))
    return h["waits"], h["wait_ns"] / 1e9


def ring_receiver(ch: RingChannel):
    # discover often so the warm-up handshake is quick; it does not matter
    # in the timed part (discovery is rate-limited, not per poll)
    c = ChannelConsumer(ch.channel, discover_interval=0.02, shm_directory=ch.directory)

    def take() -> int:
        got = c.poll()
        n = 0
        for ring, batch in got:
            n += batch.count        # the sidecar works on columns, never per record
            ring.commit(batch)
        c.idle(got)                 # the sidecar's own back-off when nothing came
        return n
    return take, c.close


def mpq_send(q, n: int) -> int:
    put = q.put
    for _ in range(n):
        put(RECORD)
    return n


def mpq_send_list(q, n: int) -> int:
    put = q.put
    batch = [RECORD] * BATCH
    for _ in range(n // BATCH):
        put(batch)
    return n // BATCH * BATCH


def mpq_flush(q) -> None:
    # put() only hands the item to the feeder thread; wait until it has
    # pickled and written everything so that CPU is counted
    q.close()
    q.join_thread()


def mpq_receiver(q, batched: bool):
    get = q.get

    def take() -> int:
        try:
            item = get(True, POLL_TIMEOUT)
        except queue_mod.Empty:
            return 0
        return len(item) if batched else 1
    return take, lambda: None


def ff_send(q, n: int) -> int:
    put = q.put
    for _ in range(n):
        put(RECORD, True, WAIT_TIMEOUT)
    return n


def ff_send_many(q, n: int) -> int:
    put_many = q.put_many
    batch = [RECORD] * BATCH
    for _ in range(n // BATCH):
        put_many(batch, True, WAIT_TIMEOUT)
    return n // BATCH * BATCH


def ff_receiver(q):
    get_many = q.get_many

    def take() -> int:
        try:
            return len(get_many(True, POLL_TIMEOUT))
        except queue_mod.Empty:
            return 0
    return take, lambda: None


@dataclass
class Mechanism:
    name: str
    kind: str            # "ring", "mpq" or "ff": how the channel is made
    send: object         # (sender, n) -> records accepted
    group: str           # "single" or "batched": which ring row it is compared with
    scale: int = 1       # records = --records // scale (slow peers get fewer)
    lossless: bool = True
    batched_get: bool = False


MECHANISMS = [
    Mechanism("ring write_wait", "ring", ring_send_wait, "single"),
    Mechanism("ring write (nowait)", "ring", ring_send_nowait, "single", lossless=False),
    Mechanism("faster-fifo put", "ff", ff_send, "single", scale=15),
    Mechanism("mp.Queue put", "mpq", mpq_send, "single", scale=30),
    Mechanism(f"ring write_many/{BATCH}", "ring", ring_send_many, "batched", lossless=False),
    Mechanism(f"faster-fifo put_many/{BATCH}", "ff", ff_send_many, "batched", scale=10),
    Mechanism(f"mp.Queue put(list/{BATCH})", "mpq", mpq_send_list, "batched", scale=3,
              batched_get=True),
]
REFERENCE = {"single": "ring write_wait", "batched": f"ring write_many/{BATCH}"}


def make_channel(mech: Mechanism, producers: int, capacity: int, shm: Path, run_id: str):
    if mech.kind == "ring":
        return RingChannel(f"bench-{os.getpid()}-{run_id}", shm, capacity)
    if mech.kind == "ff":
        return faster_fifo.Queue(max_size_bytes=capacity * producers)
    span = 16 + len(RECORD)          # the ring's per-record footprint
    items = capacity * producers // span
    return CTX.Queue(maxsize=max(1, items // BATCH) if mech.batched_get else items)


# --------------------------------------------------------------------------
# Process bodies
# --------------------------------------------------------------------------

def producer_main(mech: Mechanism, chan, n: int, start, results) -> None:
    if mech.kind == "ring":
        sender = _ring_producer(chan)
    else:
        sender = chan
        # warm-up (starts mp.Queue's feeder thread); shaped like the real
        # items so the consumer counts it as one record
        sender.put([RECORD] if mech.batched_get else RECORD)
    start.wait()
    cpu0 = time.process_time()
    sent = mech.send(sender, n)
    if mech.kind == "mpq":
        mpq_flush(sender)
    cpu = time.process_time() - cpu0
    waits = (0, 0.0)
    if mech.kind == "ring":
        waits = ring_wait_stats(sender)
        sender.close()
    results.put(("producer", sent, n, cpu, waits))


def consumer_main(mech: Mechanism, chan, producers: int, target_box, warmed, results) -> None:
    if mech.kind == "ring":
        take, close = ring_receiver(chan)
    elif mech.kind == "ff":
        take, close = ff_receiver(chan)
    else:
        take, close = mpq_receiver(chan, mech.batched_get)
    got = 0
    while got < producers:           # one warm-up record per producer
        got += take()
    warmed.set()
    got = 0
    t_last = 0.0
    cpu0 = time.process_time()
    target = target_box.value
    # target is -1 for lossy runs until the producers have reported what
    # they committed; re-read it whenever we run dry or reach it
    while target < 0 or got < target:
        k = take()
        if k:
            got += k
            t_last = time.perf_counter()
            if got < target:
                continue
        target = target_box.value
    cpu = time.process_time() - cpu0
    close()
    results.put(("consumer", got, t_last, cpu))


# --------------------------------------------------------------------------
# One run, and the whole matrix
# --------------------------------------------------------------------------

@dataclass
class RunResult:
    rate: float            # records received per second of wall time
    received: int
    sent: int              # records accepted by the mechanism
    attempted: int
    cpu_ns: float          # producer CPU per attempted write
    consumer_ns: float     # consumer CPU per received record (includes idle polling)
    waits: int             # ring write_wait sleeps (0 for the others)
    wait_s: float


def run_once(mech: Mechanism, producers: int, total: int, capacity: int,
             shm: Path, run_id: str) -> RunResult:
    per = total // producers // BATCH * BATCH   # whole batches for the batched senders
    chan = make_channel(mech, producers, capacity, shm, run_id)
    start, warmed = CTX.Event(), CTX.Event()
    target_box = CTX.RawValue("q", per * producers if mech.lossless else -1)
    results = CTX.Queue()
    procs = [CTX.Process(target=consumer_main,
                         args=(mech, chan, producers, target_box, warmed, results))]
    procs += [CTX.Process(target=producer_main, args=(mech, chan, per, start, results))
              for _ in range(producers)]
    for p in procs:
        p.start()
    try:
        if not warmed.wait(RUN_TIMEOUT):
            raise RuntimeError(f"{mech.name}: consumer never saw the warm-up records")
        t0 = time.perf_counter()       # CLOCK_MONOTONIC: comparable across processes
        start.set()
        prod, cons = [], None
        while cons is None or len(prod) < producers:
            msg = results.get(timeout=RUN_TIMEOUT)
            if msg[0] == "producer":
                prod.append(msg[1:])
                if len(prod) == producers and not mech.lossless:
                    target_box.value = sum(x[0] for x in prod)
            else:
                cons = msg[1:]
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
    sent = sum(x[0] for x in prod)
    attempted = sum(x[1] for x in prod)
    received, t_last, consumer_cpu = cons
    return RunResult(rate=received / (t_last - t0), received=received, sent=sent,
                     attempted=attempted,
                     cpu_ns=sum(x[2] for x in prod) / attempted * 1e9,
                     consumer_ns=consumer_cpu / max(received, 1) * 1e9,
                     waits=sum(x[3][0] for x in prod), wait_s=sum(x[3][1] for x in prod))


@dataclass
class Row:
    mech: Mechanism
    producers: int
    runs: list = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(r.rate for r in self.runs)

    @property
    def cpu_ns(self) -> float:
        return statistics.median(r.cpu_ns for r in self.runs)

    @property
    def consumer_ns(self) -> float:
        return statistics.median(r.consumer_ns for r in self.runs)


def run_matrix(mechs, producer_counts, records, repeats, capacity, shm) -> list[Row]:
    rows = {(m.name, p): Row(m, p) for m in mechs for p in producer_counts}
    # repeats outermost: noise from other tenants spreads over all mechanisms
    for rep in range(repeats):
        for p in producer_counts:
            for i, m in enumerate(mechs):
                # a fresh channel per run: no ring of an earlier run is rediscovered
                r = run_once(m, p, records // m.scale, capacity, shm, f"{rep}-{p}-{i}")
                rows[(m.name, p)].runs.append(r)
                check_counts(m, r)
                waits = f", {r.waits} waits {r.wait_s * 1e3:.0f} ms" if r.waits else ""
                print(f"  rep {rep + 1}/{repeats}  {m.name:<26} P={p}  "
                      f"{r.rate / 1e6:7.3f} M rec/s  cpu {r.cpu_ns:5.0f} ns/write "
                      f"{r.consumer_ns:5.0f} ns/read  received {r.received}/{r.sent} sent, "
                      f"{r.attempted - r.sent} dropped{waits}", flush=True)
    return list(rows.values())


def check_counts(m: Mechanism, r: RunResult) -> None:
    """Lossless mechanisms must deliver every attempted record; lossy ones
    every record they reported committed."""
    want = r.attempted if m.lossless else r.sent
    if r.received != want:
        raise SystemExit(f"{m.name}: received {r.received} records, expected {want}")


# --------------------------------------------------------------------------
# Bare write cost: one process, warm ring, nobody else competing
# --------------------------------------------------------------------------

def write_cost(shm: Path, capacity: int, chunk: int = 50_000, rounds: int = 5) -> dict:
    """CPU ns per 200-byte write into a warm ring (pages already touched),
    draining between timed chunks so the ring never fills.  ``cold`` is the
    first pass over fresh tmpfs pages (one page fault per 4 KiB)."""
    chan = f"bench-cost-{os.getpid()}"
    p = Producer(chan, capacity=capacity, shm_directory=shm)
    consumer = ChannelConsumer(chan, shm_directory=shm)
    chunk = min(chunk, capacity // (2 * (16 + len(RECORD))))
    batch = [RECORD] * BATCH

    def timed(kind: str) -> float:
        consumer.drain(timeout=5)
        t = time.process_time()
        if kind == "write":
            w = p.write
            for _ in range(chunk):
                w(RTYPE, RECORD)
        elif kind == "write_wait":
            w = p.write_wait
            for _ in range(chunk):
                w(RTYPE, RECORD, WAIT_TIMEOUT)
        elif kind == f"write_many/{BATCH}":
            w = p.write_many
            for _ in range(chunk // BATCH):
                w(RTYPE, batch)
        else:                         # the bare Python loop, for reference
            for _ in range(chunk):
                pass
        return (time.process_time() - t) / chunk * 1e9

    out = {"write (cold ring)": timed("write")}
    # the ring's first pass faults its pages in; lap it once before timing warm
    for _ in range(capacity // (chunk * (16 + len(RECORD))) + 1):
        timed("write")
    kinds = ["write", "write_wait", f"write_many/{BATCH}", "empty loop"]
    samples = {k: [] for k in kinds}
    for _ in range(rounds):
        for k in kinds:
            samples[k].append(timed(k))
    out.update({k: statistics.median(v) for k, v in samples.items()})
    consumer.drain(timeout=5)
    p.close()
    consumer.close()
    return out


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

def machine_facts() -> list[str]:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import numpy
    return [f"nproc {os.cpu_count()}, CPU {model}, Linux {platform.release()}",
            f"Python {platform.python_version()}, numpy {numpy.__version__}, "
            f"faster-fifo {_version('faster-fifo')}",
            f"load average at start {os.getloadavg()[0]:.2f}"]


def _version(dist: str) -> str:
    from importlib.metadata import version
    try:
        return version(dist)
    except Exception:
        return "?"


def print_table(rows: list[Row]) -> None:
    ref = {(r.mech.name, r.producers): r.rate for r in rows}
    print()
    print("| mechanism | producers | records/run | records/s (median) | ring/that | "
          "producer CPU ns/write | consumer CPU ns/record | dropped (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: (r.producers, MECHANISMS.index(r.mech))):
        ring_rate = ref[(REFERENCE[r.mech.group], r.producers)]
        ratio = "-" if r.mech.kind == "ring" else f"{ring_rate / r.rate:.1f}x"
        drops = statistics.median(x.attempted - x.sent for x in r.runs)
        dropped = f"{drops:,.0f} ({drops / r.runs[0].attempted:.1%})" if drops else "0"
        print(f"| {r.mech.name} | {r.producers} | {r.runs[0].attempted:,} | "
              f"{r.rate:,.0f} | {ratio} | {r.cpu_ns:.0f} | {r.consumer_ns:.0f} | {dropped} |")
    print("\nring/that: the ring row of the same style (write_wait for single records,"
          f" write_many/{BATCH} for batched) over that row, same producer count.")
    print("CPU ns/write: producer process CPU per record; consumer CPU ns/record: "
          "consumer process CPU per received record (includes its idle polling).")
    print("Every run was checked: records received == records sent (lossless rows) or "
          "== records committed (non-blocking ring rows, which drop when the ring is full).")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=3_000_000,
                    help="records per ring run, split over the producers "
                         "(peers get fewer, see the records/run column)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--producers", default="1,2,4")
    ap.add_argument("--capacity", type=int, default=16 << 20, help="ring bytes per producer")
    ap.add_argument("--quick", action="store_true", help="fewer records, fewer repeats")
    ap.add_argument("--only", help="comma-separated substrings of mechanism names")
    args = ap.parse_args(argv)
    if args.quick:
        args.records = min(args.records, 900_000)
        args.repeats = min(args.repeats, 2)
    mechs = MECHANISMS
    if args.only:
        keys = args.only.split(",")
        mechs = [m for m in MECHANISMS if any(k in m.name for k in keys)
                 or m.name in REFERENCE.values()]
    producer_counts = [int(x) for x in args.producers.split(",")]

    print("\n".join(machine_facts()))
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    shm = Path(tempfile.mkdtemp(prefix="otelplug-bench-", dir="/dev/shm"))
    t_start = time.monotonic()
    try:
        cost = write_cost(shm, args.capacity)
        print("\nBare write cost, one process, warm 16 MiB ring, CPU ns per 200-byte record:")
        for k, v in cost.items():
            print(f"  {k:<20} {v:7.0f} ns")
        print(f"\nThroughput: {args.repeats} runs per configuration, medians; "
              f"{os.cpu_count()} cores, so 2+ producers plus the consumer oversubscribe them.")
        rows = run_matrix(mechs, producer_counts, args.records, args.repeats,
                          args.capacity, shm)
        print_table(rows)
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    print(f"\ntotal {time.monotonic() - t_start:.0f} s, "
          f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
