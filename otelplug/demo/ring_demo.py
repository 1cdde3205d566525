"""``otelplug demo --ring-only``: the ring under load, with an end-to-end accounting check.

N producer processes write records as fast as they can for S seconds while
this process consumes the channel.  At the end every producer's ring is
reclaimed and its final counters are checked against two independent
tallies: how many writes the producer process itself made, and how many
records this process actually received from that ring.  Every record must
be accounted for: ``attempted == delivered + dropped + lost_in_flight``.

The channel is private (``demo-<pid>``) so that the demo never mixes with a
real deployment's channel, and every file it creates is removed at the end.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from otelplug.ring import (DEFAULT_CAPACITY, DEFAULT_MAX_RECORD, ChannelConsumer, Producer,
                           ProducerAccount)
from otelplug.ring.layout import HEADER_SIZE
from otelplug.ring.segment import resolve_channel, shm_dir

RECORD_TYPE = 1
OVERSIZE_RECORDS = 3        # written by producer 0 to show the oversize accounting
READY_TIMEOUT_S = 10.0      # spawning a Python process takes well under a second
DRAIN_TIMEOUT_S = 2.0
MIN_CAPACITY = 64 * 1024


# -- producer processes ---------------------------------------------------------

def record_payloads(record_size: int) -> list[bytes]:
    """Payloads from half to one and a half times ``record_size``, so that
    records wrap the ring at varying offsets like real telemetry does."""
    lo, hi = max(1, record_size // 2), max(1, record_size * 3 // 2)
    blob = os.urandom(hi)
    step = max(1, (hi - lo) // 31)
    return [blob[:n] for n in range(lo, hi + 1, step)]


def ring_capacity(directory: Path, producers: int) -> int:
    """The ring size for each producer: the default, or less when the
    shared-memory folder is small (Docker gives containers 64 MB of
    /dev/shm).  Ring pages are only allocated when first written, and a
    write to a page the tmpfs has no room for kills the producer with
    SIGBUS, so the demo keeps all rings within half the free space."""
    try:
        st = os.statvfs(directory)
        free = st.f_bavail * st.f_frsize
    except OSError:
        return DEFAULT_CAPACITY
    budget = free // 2 // producers - HEADER_SIZE
    capacity = DEFAULT_CAPACITY
    while capacity > budget and capacity > MIN_CAPACITY:
        capacity //= 2
    return capacity if capacity <= budget else 0


def producer_main(channel: str, index: int, capacity: int, record_size: int, seconds: float,
                  ready, start, stop, results) -> None:
    """One producer process: write until ``seconds`` pass or ``stop`` is set,
    then report its own tally of the writes it made."""
    # Ctrl-C reaches the whole process group; the parent decides when we stop
    # (through ``stop``) so that every producer still reports its tally.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    producer = Producer(channel, capacity=capacity)
    payloads = record_payloads(record_size)
    # the ring exists (and the consumer can see it) before the clock starts
    attempted, committed = 1, int(producer.write(RECORD_TYPE, payloads[0]))
    ready.put(os.getpid())
    start.wait(READY_TIMEOUT_S)
    if index == 0:
        too_big = bytes(DEFAULT_MAX_RECORD + 1)
        for _ in range(OVERSIZE_RECORDS):
            committed += producer.write(RECORD_TYPE, too_big)
            attempted += 1
    deadline = time.monotonic() + seconds
    write = producer.write
    n = len(payloads)
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        # check the clock only every 256 writes: it costs as much as a write
        for _ in range(256):
            committed += write(RECORD_TYPE, payloads[i])
            i = i + 1 if i + 1 < n else 0
        attempted += 256
    unavailable = producer.unavailable
    producer.close()
    results.put({"pid": os.getpid(), "attempted": attempted, "committed": committed,
                 "unavailable": unavailable})


# -- consumer side ---------------------------------------------------------------

@dataclass
class Totals:
    records: int = 0
    bytes: int = 0


class DemoConsumer:
    """Drains the channel, counting what each producer's ring delivered."""

    def __init__(self, channel: str):
        self.consumer = ChannelConsumer(channel, discover_interval=0.05)
        self.total = Totals()
        self.by_pid: dict[int, Totals] = {}
        self.stop_when = lambda: False     # pump returns early once this is true

    def pump(self, until: float) -> None:
        """Consume until the monotonic time ``until``."""
        c = self.consumer
        while time.monotonic() < until and not self.stop_when():
            got = c.poll()
            for ring, batch in got:
                self._count(ring.pid, batch)
                ring.commit(batch)
            c.idle(got)

    def _count(self, pid, batch) -> None:
        t = self.by_pid.setdefault(pid, Totals())
        t.records += batch.count
        t.bytes += batch.nbytes
        self.total.records += batch.count
        self.total.bytes += batch.nbytes

    def drain(self, timeout: float) -> None:
        self.consumer.drain(lambda ring, batch: self._count(ring.pid, batch),
                            timeout=timeout, until_no_producers=True)

    def dropped(self) -> int:
        live = sum(h["dropped_full"] + h["oversize"] for h in self.consumer.producers())
        return live + sum(a.dropped for a in self.consumer.retired)

    def close(self) -> None:
        self.consumer.close()


# -- the command -----------------------------------------------------------------

def run(args) -> int:
    if args.producers < 1 or args.seconds <= 0 or args.record_size < 1:
        print("otelplug demo: --producers, --seconds and --record-size must be positive",
              file=sys.stderr)
        return 2
    try:
        channel = resolve_channel(args.channel or f"demo-{os.getpid()}")
    except ValueError as exc:
        print(f"otelplug demo: {exc}", file=sys.stderr)
        return 2
    directory = shm_dir()
    if not directory.is_dir():
        print(f"otelplug demo: shared-memory folder {directory} does not exist "
              "(set OTELPLUG_SHM_DIR to a tmpfs folder)", file=sys.stderr)
        return 1
    capacity = ring_capacity(directory, args.producers)
    if not capacity:
        print(f"otelplug demo: not enough free space in {directory} for {args.producers} "
              f"rings of {MIN_CAPACITY // 1024} KiB", file=sys.stderr)
        return 1
    try:
        consumer = DemoConsumer(channel)
    except RuntimeError as exc:     # the channel already has a consumer
        print(f"otelplug demo: {exc}", file=sys.stderr)
        return 1
    print(f"otelplug demo: {args.producers} producers x {args.seconds:g}s, records of "
          f"~{args.record_size} B, rings of {capacity // 1024} KiB, channel {channel!r} "
          f"in {directory}", flush=True)
    try:
        return _run_demo(args, channel, capacity, consumer)
    finally:
        if args.channel is None:
            _remove_channel_files(channel, directory)
        consumer.close()


class _Interrupt:
    """Ctrl-C sets a flag instead of raising: a KeyboardInterrupt between a
    batch's scan and its commit would leave the ring un-drainable and the
    accounting wrong.  The loops check the flag and wind down normally."""

    def __init__(self):
        self.set = False
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if not self.set:
            print("\ninterrupted: stopping the producers", flush=True)
        self.set = True

    def restore(self):
        signal.signal(signal.SIGINT, self._previous)


def _run_demo(args, channel: str, capacity: int, dc: DemoConsumer) -> int:
    # spawn, not fork: children must not inherit the consumer's lock and
    # ring descriptors, and spawn behaves the same on every platform
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    start, stop = ctx.Event(), ctx.Event()
    procs = [ctx.Process(target=producer_main, name=f"otelplug-demo-producer-{i}",
                         args=(channel, i, capacity, args.record_size, args.seconds,
                               ready, start, stop, results), daemon=True)
             for i in range(args.producers)]
    interrupt = _Interrupt()
    dc.stop_when = lambda: interrupt.set
    try:
        for p in procs:
            p.start()
        started = _wait_ready(ready, len(procs), dc)
        start.set()
        t0 = time.monotonic()
        end = t0 + args.seconds
        last = (t0, 0, 0)
        while time.monotonic() < end and not interrupt.set and started:
            dc.pump(min(end, time.monotonic() + 1.0))
            last = _progress(dc, t0, last)
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        start.set()   # a producer still waiting for the start must not hang
        dc.stop_when = lambda: False
        tallies = _collect(results, procs, dc)
        dc.drain(DRAIN_TIMEOUT_S)
        interrupt.restore()
    if not started:
        print("otelplug demo: the producer processes did not start in time", file=sys.stderr)
    rate = dc.total.records / elapsed if elapsed else 0.0
    print(f"\nconsumed {dc.total.records:,} records, {dc.total.bytes / 1e6:,.1f} MB in "
          f"{elapsed:.2f}s: {rate:,.0f} records/s, "
          f"{dc.total.bytes / 1e6 / max(elapsed, 1e-9):,.1f} MB/s, {dc.dropped():,} dropped")
    ok = print_accounting(tallies, dc) and started
    return 130 if interrupt.set else (0 if ok else 1)


def _wait_ready(ready, n: int, dc: DemoConsumer) -> bool:
    """Wait until every producer has its ring, consuming meanwhile.
    False if they did not all start in time (or Ctrl-C)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    for _ in range(n):
        while True:
            try:
                ready.get(timeout=0.05)
                break
            except queue.Empty:
                if time.monotonic() > deadline or dc.stop_when():
                    return False
                dc.pump(time.monotonic() + 0.01)
    return True


def _progress(dc: DemoConsumer, t0: float, last: tuple) -> tuple:
    now = time.monotonic()
    t_prev, rec_prev, bytes_prev = last
    dt = max(now - t_prev, 1e-9)
    print(f"  {now - t0:5.1f}s  {(dc.total.records - rec_prev) / dt:>12,.0f} records/s  "
          f"{(dc.total.bytes - bytes_prev) / dt / 1e6:8.1f} MB/s  "
          f"{dc.dropped():>10,} dropped", flush=True)
    return now, dc.total.records, dc.total.bytes


def _collect(results, procs, dc: DemoConsumer) -> dict[int, dict]:
    """Each producer's own tally, keyed by pid.  Results are read before the
    processes are joined (a child blocks on exit until its queue is flushed);
    a producer that does not report in time is killed, and its ring then
    shows its unread records as lost in flight."""
    tallies: dict[int, dict] = {}
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while len(tallies) < len(procs) and time.monotonic() < deadline:
        try:
            t = results.get(timeout=0.05)
            tallies[t["pid"]] = t
        except queue.Empty:
            pass
        dc.pump(time.monotonic() + 0.01)   # keep draining so nobody is stuck on a full ring
    for p in procs:
        p.join(timeout=max(0.1, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()
    return tallies


def print_accounting(tallies: dict[int, dict], dc: DemoConsumer) -> bool:
    """The per-producer table; True if every producer's records add up."""
    accounts: dict[int, ProducerAccount] = {a.pid: a for a in dc.consumer.retired}
    pids = sorted(set(tallies) | set(accounts))
    header = (f"{'pid':>8} {'attempted':>12} {'delivered':>12} {'dropped':>10} "
              f"{'full':>10} {'oversize':>8} {'lost':>6}  check")
    print("\nper-producer accounting (attempted = delivered + dropped + lost in flight)")
    print(header)
    all_ok = True
    for pid in pids:
        a, t = accounts.get(pid), tallies.get(pid)
        problems = _check(pid, a, t, dc.by_pid.get(pid, Totals()))
        all_ok &= not problems
        if a is None:
            print(f"{pid:>8} {t['attempted']:>12,} {'?':>12} {'?':>10} {'?':>10} {'?':>8} {'?':>6}  "
                  f"MISMATCH: {'; '.join(problems)}")
            continue
        status = "OK" if not problems else "MISMATCH: " + "; ".join(problems)
        print(f"{pid:>8} {a.attempted:>12,} {a.delivered:>12,} {a.dropped:>10,} "
              f"{a.dropped_full:>10,} {a.oversize:>8,} {a.lost_in_flight:>6,}  {status}")
    if not pids:
        print("  (no producer reported)")
        all_ok = False
    print("\naccounting: " + ("OK" if all_ok else "MISMATCH"))
    return all_ok


def _check(pid: int, a: ProducerAccount | None, t: dict | None, received: Totals) -> list[str]:
    """Compare the ring's final counters with what the producer says it
    wrote and with what this process actually received."""
    if a is None:
        return ["ring was not reclaimed (producer still running?)"]
    problems = []
    # lost_in_flight is what attempted leaves unexplained: a producer can lose
    # at most the one record it was writing when it died, none on a clean close
    if a.lost_in_flight > (0 if a.clean_close else 1):
        problems.append(f"{a.lost_in_flight:,} records lost, more than the one in flight")
    if a.lost_in_flight < 0:
        problems.append("more delivered and dropped than attempted")
    if t is None:
        problems.append("producer did not report its tally")
    else:
        if t["attempted"] != a.attempted + t["unavailable"]:
            problems.append(f"producer made {t['attempted']:,} writes, ring counted {a.attempted:,}")
        if t["committed"] != a.attempted - a.dropped:
            problems.append(f"producer had {t['committed']:,} writes accepted, "
                            f"ring counted {a.attempted - a.dropped:,}")
    if received.records != a.delivered:
        problems.append(f"received {received.records:,} records, ring counted {a.delivered:,}")
    return problems


def _remove_channel_files(channel: str, directory: Path) -> None:
    """Leave nothing behind on the demo's private channel: rings are normally
    reclaimed by the consumer, but the consumer lock file never is, nor a
    ring whose producer had to be killed.  Called while the consumer still
    holds its lock, so that nobody can start using the lock file we remove.
    (On a channel named with --channel we remove nothing: it may be shared.)"""
    for pattern in (f"otelplug.{channel}.*", f".otelplug.{channel}.*"):
        for path in directory.glob(pattern):
            path.unlink(missing_ok=True)
