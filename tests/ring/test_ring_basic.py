"""Single-process behaviour of the ring, for both implementations."""
from __future__ import annotations

import os
import stat
import threading

import pytest

from otelplug.ring import ChannelConsumer, Producer, resolve_channel
from otelplug.ring.layout import HEADER_SIZE

from .helpers import Pair


def test_all_records_arrive_in_order_with_sequence_numbers(ring_impl, shm_dir):
    pair = Pair(ring_impl, shm_dir, 1 << 16)
    sent = [(1 + i % 255, os.urandom(i % 700)) for i in range(300)]
    got = []
    for i, (rtype, data) in enumerate(sent):
        assert pair.writer.write(rtype, data)
        if i % 37 == 0:
            got += pair.read_all()
    got += pair.read_all()
    assert [(t, d) for t, d, _ in got] == sent
    assert [s for _, _, s in got] == list(range(len(sent)))
    pair.close()


def test_record_size_limits_one_byte_to_one_mib(ring_impl, shm_dir):
    pair = Pair(ring_impl, shm_dir, 4 << 20, max_record=1 << 20)
    assert pair.writer.write(1, b"x")
    big = os.urandom(1 << 20)
    assert pair.writer.write(2, big)
    assert not pair.writer.write(3, big + b"!")  # one byte over the limit
    got = pair.read_all()
    assert [(t, d) for t, d, _ in got] == [(1, b"x"), (2, big)]
    s = pair.writer.stats()
    assert (s["attempted"], s["committed"], s["oversize"], s["oversize_bytes"]) == (3, 2, 1, (1 << 20) + 1)
    pair.close()


def test_full_ring_drops_and_counts_without_blocking(ring_impl, shm_dir):
    pair = Pair(ring_impl, shm_dir, 1024)
    results = [pair.writer.write(1, b"z" * 100) for _ in range(50)]
    n_ok = sum(results)
    assert 0 < n_ok < 50 and results[:n_ok] == [True] * n_ok  # drops only once full
    h = pair.reader.header()
    assert h["dropped_full"] == 50 - n_ok and h["dropped_full_bytes"] == 100 * (50 - n_ok)
    assert h["attempted"] == 50 and h["committed"] == n_ok
    assert len(pair.read_all()) == n_ok
    assert pair.writer.write(1, b"z" * 100)  # room again after the commit
    pair.close()


def test_write_many_publishes_once_and_counts(ring_impl, shm_dir):
    pair = Pair(ring_impl, shm_dir, 4096)
    recs = [bytes([i]) * 50 for i in range(100)]
    ok = pair.writer.write_many(7, recs)
    got = pair.read_all()
    assert [d for _, d, _ in got] == recs[:ok]
    assert pair.writer.stats()["dropped_full"] == 100 - ok
    pair.close()


def test_write_wait_waits_for_the_consumer(ring_impl, shm_dir):
    pair = Pair(ring_impl, shm_dir, 1024)
    while pair.writer.write(1, b"f" * 100):
        pass
    before = pair.reader.header()["dropped_full"]
    got = []
    t = threading.Timer(0.05, lambda: got.extend(pair.read_all()))
    t.start()
    assert pair.writer.write_wait(1, b"w" * 100, 5.0)
    t.join()
    h = pair.reader.header()
    # it waited instead of dropping: the one drop is the loop's last write
    assert h["waits"] >= 1 and h["dropped_full"] == before == 1
    assert b"w" * 100 in [d for _, d, _ in got + pair.read_all()]
    pair.close()


def test_bad_record_type_is_a_programming_error(ring_impl, shm_dir):
    pair = Pair(ring_impl, shm_dir, 1024)
    for bad in (0, 256, -1):
        with pytest.raises(ValueError):
            pair.writer.write(bad, b"x")
    pair.close()


def test_segments_are_owner_only_by_default(shm_dir):
    p = Producer("perm")
    assert p.write(1, b"x")
    assert stat.S_IMODE(os.stat(p.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(p.path.with_suffix(".meta")).st_mode) == 0o600
    p.close()


def test_group_option_makes_segments_group_shared(shm_dir):
    gid = os.getgid()
    p = Producer("grp", group=gid)
    assert p.write(1, b"x")
    st = os.stat(p.path)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == gid
    p.close()


def test_channel_names_scope_segments(shm_dir, monkeypatch):
    a, b = Producer("alpha"), Producer("beta")
    a.write(1, b"a")
    b.write(1, b"b")
    with ChannelConsumer("alpha") as c:
        got = []
        c.drain(lambda r, batch: got.extend(bytes(p) for _, p in batch), timeout=2)
    assert got == [b"a"]
    monkeypatch.setenv("OTELPLUG_CHANNEL", "fromenv")
    assert resolve_channel() == "fromenv" and resolve_channel("arg") == "arg"
    monkeypatch.delenv("OTELPLUG_CHANNEL")
    assert resolve_channel() == "default"
    for bad in ("a.b", "", "x" * 65, "../etc", "sp ace"):
        with pytest.raises(ValueError, match="invalid otelplug channel"):
            resolve_channel(bad) if bad else Producer(bad or "a.b")
    a.close()
    b.close()


def test_one_consumer_per_channel(shm_dir):
    with ChannelConsumer("solo"):
        with pytest.raises(RuntimeError, match="already has a consumer"):
            ChannelConsumer("solo")
    ChannelConsumer("solo").close()  # free again once the first is gone


def test_threads_of_one_process_write_safely(ring_impl, shm_dir):
    p = Producer("threads", capacity=1 << 22, impl=ring_impl)
    n_threads, per = 4, 2000

    def work(k):
        for i in range(per):
            p.write(1 + k, f"{k}:{i}".encode())

    ts = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    got = []
    with ChannelConsumer("threads", impl=ring_impl) as c:
        c.drain(lambda r, b: got.extend((t, bytes(x)) for t, x in b), timeout=5)
    for k in range(n_threads):
        mine = [x for t, x in got if t == 1 + k]
        assert mine == [f"{k}:{i}".encode() for i in range(per)]  # per-thread order kept
    p.close()


def test_unavailable_ring_is_counted_not_raised(shm_dir, monkeypatch, caplog):
    monkeypatch.setenv("OTELPLUG_SHM_DIR", str(shm_dir / "does-not-exist"))
    p = Producer("nowhere")
    assert p.write(1, b"x") is False
    assert p.write_many(1, [b"a", b"b"]) == 0
    assert p.stats()["unavailable"] == 3
    assert "cannot create a ring" in caplog.text


def test_reader_rejects_files_that_are_not_rings(ring_impl, shm_dir):
    path = shm_dir / "junk"
    path.write_bytes(os.urandom(HEADER_SIZE + 4096))
    fd = os.open(path, os.O_RDWR)
    with pytest.raises(ValueError, match="junk: not an otelplug ring"):
        ring_impl.RingReader(fd, HEADER_SIZE + 4096, str(path))
    os.close(fd)
    (shm_dir / "otelplug.bad.1.00000000.ring").write_bytes(b"short")
    with ChannelConsumer("bad") as c:
        assert c.stats.bad_segments == 1
        assert "too small" in c.stats.bad_segment_errors[0]
        assert c.poll() == []  # and it keeps running


def test_full_shared_memory_folder_is_counted_not_a_crash(shm_dir, monkeypatch):
    """A ring larger than the free space of its folder must fail at creation
    (counted as unavailable), never SIGBUS the app on a later write."""
    import errno as _errno

    def no_space(fd, offset, length):
        raise OSError(_errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    p = Producer("tiny")
    assert p.write(1, b"x" * 200) is False and p.stats()["unavailable"] == 1
    assert not list(shm_dir.glob(".otelplug.tiny.*")), "half-built segment removed"


def test_probe_alive_tells_a_claimed_dead_ring_from_a_live_one(shm_dir):
    from otelplug.ring.segment import open_segment, probe_alive
    live = Producer("probe")
    live.write(1, b"x")
    fd = open_segment(live.path)
    assert probe_alive(fd) is True
    live.close()
    with ChannelConsumer("probe", reclaim=False) as c:
        c.discover()                       # claims the dead ring exclusively
        assert next(iter(c.rings.values())).dead
        assert probe_alive(fd) is False
    os.close(fd)


def test_write_many_wait_is_lossless_with_a_slow_consumer(ring_impl, shm_dir):
    pair = Pair(ring_impl, shm_dir, 1024)
    recs = [bytes([i % 256]) * 100 for i in range(200)]   # 20x the ring
    got = []
    stop = threading.Event()

    def consume():
        while not stop.is_set() or pair.reader.pending_bytes():
            got.extend(pair.read_all())
            stop.wait(0.001)

    t = threading.Thread(target=consume)
    t.start()
    assert pair.writer.write_many_wait(1, recs, 5.0) == 200
    stop.set()
    t.join()
    assert [d for _, d, _ in got] == recs
    h = pair.reader.header()
    assert h["dropped_full"] == 0 and h["waits"] > 0
    pair.close()


def test_idle_consumer_is_woken_by_a_publish(shm_dir):
    """With the futex wake-up an idle consumer returns from a long back-off
    as soon as a producer publishes, instead of at the end of its sleep."""
    import time as _t

    from otelplug.ring import impl
    cy = impl.by_name("cython")     # the reference ring has no futex, by design
    assert cy.HAVE_FUTEX
    p = Producer("wake", impl=cy)
    p.write(1, b"first")
    with ChannelConsumer("wake", max_idle_sleep=30.0, impl=cy) as c:
        c.drain(timeout=5)
        c._sleep = 20.0            # as if it had backed off for a long time
        threading.Timer(0.2, lambda: p.write(1, b"wake up")).start()
        t0 = _t.monotonic()
        c.idle([])                 # would sleep up to 30 s without a wake-up
        waited = _t.monotonic() - t0
        got = [bytes(x) for _, b in c.poll() for _, x in b]
    assert got == [b"wake up"]
    assert waited < 10, waited     # a liveness bound: the wake-up happened
    assert (shm_dir / "otelplug.wake.wake").stat().st_mode & 0o777 == 0o600
    p.close()
