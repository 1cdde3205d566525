"""The ring with real processes: many producers, SIGKILL at any instant,
SIGSTOP of the consumer, fork, multiprocessing, and consumer restarts."""
from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path


from otelplug.ring import ChannelConsumer, Producer
from otelplug.ring.layout import read_header
from tests.waiting import wait_child, wait_for

from .ring_worker import check, record

WORKER = str(Path(__file__).with_name("ring_worker.py"))


def spawn(*args, **kw):
    p = subprocess.Popen([sys.executable, WORKER, *map(str, args)], stdout=subprocess.PIPE,
                         text=True, **kw)
    assert p.stdout.readline().strip() == "ready"
    return p


class Collector:
    """Consumer in the test process: checks every record and keeps, per
    producer pid, the record indices in arrival order."""

    def __init__(self, channel, **kw):
        self.c = ChannelConsumer(channel, discover_interval=0.02, **kw)
        self.seen: dict[int, list[int]] = {}

    def handle(self, ring, batch):
        for _t, payload in batch:
            _index, pid, i = check(bytes(payload))
            assert pid == ring.pid  # a record is only ever in its own process's ring
            self.seen.setdefault(pid, []).append(i)

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            got = self.c.poll()
            for ring, batch in got:
                self.handle(ring, batch)
                ring.commit(batch)
            self.c.idle(got)

    def finish(self, timeout=20):
        self.c.drain(self.handle, timeout=timeout, until_no_producers=True)
        assert not self.c.rings, "rings of dead producers must be reclaimed"
        return {a.pid: a for a in self.c.retired}


def assert_accounting(account, seen_indices):
    """The consumer's account of a reclaimed ring: ``lost_in_flight`` is what
    attempted leaves unexplained, so it must be what a producer can really
    lose: nothing after a clean close, at most the one record it was writing
    when killed; and what arrived is exactly the committed records, in
    order, each once."""
    a = account
    assert a.lost_in_flight in ((0,) if a.clean_close else (0, 1)), a
    assert a.delivered == len(seen_indices)
    assert seen_indices == sorted(set(seen_indices))
    assert a.corrupt == 0


def test_n_producers_by_m_records_exact_accounting(shm_dir):
    col = Collector("acct")
    procs = [spawn("produce", "acct", k, 20000) for k in range(4)]
    while any(p.poll() is None for p in procs):
        col.pump(0.05)
    stats = [json.loads(p.stdout.read()) for p in procs]
    accounts = col.finish()
    assert len(accounts) == 4
    for p, st in zip(procs, stats):
        a = accounts[p.pid]
        assert_accounting(a, col.seen.get(p.pid, []))
        assert a.attempted == 20000 and a.lost_in_flight == 0 and a.clean_close
        assert a.delivered == st["committed"] and a.dropped == st["dropped_full"] + st["oversize"]
        if a.dropped == 0:
            assert col.seen[p.pid] == list(range(20000))
    col.c.close()


def test_sigkill_mid_record_is_invisible(shm_dir):
    col = Collector("torn")
    p = spawn("produce", "torn", 0, 10**9, "--torn-after", 500)
    assert p.wait(10) == -signal.SIGKILL
    accounts = col.finish()
    a = accounts[p.pid]
    assert col.seen[p.pid] == list(range(500))  # the torn 501st never appears
    assert (a.attempted, a.delivered, a.lost_in_flight) == (501, 500, 1)
    assert not a.clean_close
    left = [f for f in shm_dir.glob("otelplug.torn.*") if f.suffix in (".ring", ".meta")]
    assert not left, "dead ring and its definitions file reclaimed"
    col.c.close()


def test_random_sigkills_during_tight_write_loops(shm_dir):
    rng = random.Random(1234)
    col = Collector("kill")
    pids = []
    for round_ in range(4):
        procs = [spawn("produce", "kill", k, 0, "--forever", "--capacity", 1 << 16)
                 for k in range(3)]
        pids += [p.pid for p in procs]
        for p in procs:
            col.pump(rng.uniform(0.01, 0.15))
            p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait(10)
    accounts = col.finish()
    assert sorted(accounts) == sorted(pids)
    for pid in pids:
        a = accounts[pid]
        seen = col.seen.get(pid, [])
        assert_accounting(a, seen)
        assert a.lost_in_flight in (0, 1)
        assert a.attempted > 0


def delivered(path) -> int:
    """The ring's count of records the consumer has committed, from its header."""
    with open(path, "rb") as f:
        return read_header(f.read(4096))["delivered"]


def test_full_ring_with_consumer_stopped(shm_dir):
    consumer = spawn("consume", "stop")
    p = Producer("stop", capacity=1 << 16)
    pid = os.getpid()
    for i in range(100):
        p.write(1, record(0, pid, i))
    wait_for(lambda: delivered(p.path) == 100, what="the consumer to commit the first 100")
    consumer.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        for i in range(100, 50100):
            p.write(1, record(0, pid, i))
        # a liveness bound, not a benchmark: 50k non-blocking writes take
        # milliseconds; blocking on the stopped consumer would never end
        assert time.monotonic() - t0 < 10
    finally:
        consumer.send_signal(signal.SIGCONT)
    st = p.stats()
    assert st["attempted"] == 50100 and st["dropped_full"] > 40000
    assert st["committed"] + st["dropped_full"] == st["attempted"]
    wait_for(lambda: delivered(p.path) == st["committed"], what="the resumed consumer to catch up")
    consumer.send_signal(signal.SIGTERM)
    seen = json.loads(consumer.communicate(timeout=10)[0])[str(pid)]
    assert len(seen) == st["committed"]  # everything committed arrived
    assert seen[:100] == list(range(100)) and seen == sorted(set(seen))
    p.close()


def _child_writes(channel, n):
    p = _PRODUCER_FOR_FORK
    for i in range(n):
        p.write(1, record(1, os.getpid(), i))


_PRODUCER_FOR_FORK = None


def test_os_fork_child_gets_its_own_ring(shm_dir):
    col = Collector("fork")
    p = Producer("fork")
    parent_pid = os.getpid()
    for i in range(100):
        p.write(1, record(0, parent_pid, i))
    parent_path = p.path
    child = os.fork()
    if child == 0:  # the child writes through the same Producer object
        try:
            for i in range(300):
                p.write(1, record(1, os.getpid(), i))
            os._exit(0 if p.path != parent_path else 3)
        except BaseException:
            os._exit(4)
    for i in range(100, 200):
        p.write(1, record(0, parent_pid, i))
    assert wait_child(child) == 0
    p.close()
    accounts = col.finish()
    assert col.seen[parent_pid] == list(range(200))
    assert col.seen[child] == list(range(300))
    assert accounts[child].attempted == 300 and accounts[parent_pid].attempted == 200
    col.c.close()


def _pool_task(n):
    for i in range(n):
        _PRODUCER_FOR_FORK.write(1, record(2, os.getpid(), i))
    return os.getpid()


def test_multiprocessing_fork_pool(shm_dir):
    global _PRODUCER_FOR_FORK
    col = Collector("pool")
    _PRODUCER_FOR_FORK = Producer("pool")
    _PRODUCER_FOR_FORK.write(1, record(0, os.getpid(), 0))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        pids = pool.map(_pool_task, [1000] * 6, chunksize=1)
    _PRODUCER_FOR_FORK.close()
    accounts = col.finish()
    per_pid = {}
    for pid in pids:
        per_pid[pid] = per_pid.get(pid, 0) + 1000
    for pid, n in per_pid.items():
        assert accounts[pid].delivered == n and accounts[pid].attempted == n
        assert len(col.seen[pid]) == n
    assert col.seen[os.getpid()] == [0]
    col.c.close()


def test_consumer_restart_resumes_at_committed_position(shm_dir):
    p = Producer("restart")
    me = os.getpid()
    for i in range(5000):
        p.write(1, record(0, me, i))
    first = subprocess.run([sys.executable, WORKER, "consume", "restart", "--max-batches", "5"],
                           capture_output=True, text=True, timeout=30)
    seen1 = json.loads(first.stdout.splitlines()[-1])[str(me)]
    assert seen1 == list(range(5 * 256))  # it stopped after five committed batches
    second = spawn("consume", "restart")
    wait_for(lambda: delivered(p.path) == 5000, what="the second consumer to commit all 5000")
    second.send_signal(signal.SIGTERM)
    seen2 = json.loads(second.communicate(timeout=10)[0])[str(me)]
    assert seen2 == list(range(5 * 256, 5000))  # resumed, nothing lost, nothing twice
    p.close()


def test_consumer_killed_before_commit_rereads_uncommitted(shm_dir):
    """SIGKILL of the consumer: what it had not committed is read again by
    the next one (at-least-once), everything arrives."""
    p = Producer("crash")
    me = os.getpid()
    for i in range(3000):
        p.write(1, record(0, me, i))
    c = ChannelConsumer("crash")
    ring = next(iter(c.rings.values()))
    b1 = ring.scan(1000, 1 << 30)
    ring.commit(b1)
    ring.scan(1000, 1 << 30)  # read but never committed
    c._lock.release()  # as if this consumer process had died
    c2 = Collector("crash")
    p.close()
    c2.finish()
    assert c2.seen[me] == list(range(1000, 3000))
    c2.c.close()
