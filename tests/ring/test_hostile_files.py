"""Hostile files in the shared-memory folder (issue 18, items 6, 7 and 10;
issue 16, defect 5): truncated rings, rings and lock/wake files owned by
another uid or world-writable, symlinks, and what a clean exit leaves
behind.  "Another uid" is made as root with os.chown to 65534 (nobody)."""
from __future__ import annotations

import logging
import os
import random
import stat

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from otelplug.ring import ChannelConsumer, Producer
from otelplug.ring.layout import HEADER_SIZE, RingTruncated, read_header
from otelplug.ring.segment import ConsumerLock, WakeFile

from tests.ring.helpers import Pair

NOBODY = 65534


@pytest.fixture
def as_root():
    """Files of another uid are made with chown, which needs root (skipped
    locally otherwise, an error on CI: tests/requirements.py)."""
    if os.geteuid() != 0:
        from tests.requirements import missing
        missing("root (to chown files to another uid)", "run the tests as root, as CI does")


def _records(n, size=100):
    return [bytes([65 + i % 26]) * size for i in range(n)]


# -- item 6: a ring truncated under its reader -------------------------------
def test_truncated_ring_raises_instead_of_sigbus(ring_impl, shm_dir):
    p = Pair(ring_impl, shm_dir, 1 << 16)
    for r in _records(200):
        p.writer.write(1, r)
    held = p.reader.scan(1000)
    assert held.count > 100
    os.truncate(p.path, 4096)
    # what the pipelines still hold reads as zeros or as the old bytes, never a SIGBUS
    last = bytes(held.payload(held.count - 1))
    assert last in (b"\0" * 100, _records(held.count)[-1])
    assert p.reader.truncated()
    for op in (lambda: p.reader.scan(), p.reader.header, p.reader.pending_bytes,
               lambda: p.reader.commit(held)):
        with pytest.raises(RingTruncated):
            op()
    os.truncate(p.path, 0)
    bytes(held.payload(0))       # even the header page gone: still no fault
    p.reader.close()
    os.close(p.fd)


def test_consumer_drops_a_truncated_ring_and_reports_it(ring_impl, shm_dir, caplog):
    caplog.set_level(logging.WARNING, "otelplug.ring")
    victim, other = Producer("trunc", impl=ring_impl), None
    with ChannelConsumer("trunc", impl=ring_impl) as c:
        victim.write(1, b"before")
        assert c.drain(timeout=5) == 1
        os.truncate(victim.path, 4096)
        other = Producer("trunc", impl=ring_impl)  # an honest producer keeps going
        other.write(1, b"after")
        got = []
        c.drain(lambda ring, b: got.extend(bytes(p) for _, p in b), timeout=5)
        assert got == [b"after"]
        assert c.stats.rejected == {"truncated": 1}
        assert victim.path not in c.rings
    assert sum("truncated" in r.getMessage() for r in caplog.records) == 1
    other.close()
    victim._writer = None   # its mapping is gone: writing would fault the victim itself
    victim._close_fds()


# -- item 7: owner and mode of ring files --------------------------------------
def _foreign_ring(ring_impl, shm_dir, channel, how):
    p = Producer(channel, impl=ring_impl)
    p.write(1, b"injected")
    path = p.path
    if how == "foreign_owner":
        os.chown(path, NOBODY, NOBODY)
    elif how == "world_writable":
        os.chmod(path, 0o666)
    elif how == "group_writable":
        os.chmod(path, 0o660)
    elif how == "symlink":
        target = shm_dir / "elsewhere.ring"
        os.rename(path, target)
        os.symlink(target, path)
    return p


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize("how", ["foreign_owner", "world_writable", "group_writable", "symlink"])
def test_untrusted_rings_are_refused_logged_once_and_counted(ring_impl, shm_dir, caplog, how):
    caplog.set_level(logging.WARNING, "otelplug.ring")
    p = _foreign_ring(ring_impl, shm_dir, "hostile", how)
    with ChannelConsumer("hostile", impl=ring_impl, discover_interval=0.01) as c:
        got = []
        c.drain(lambda ring, b: got.extend(bytes(x) for _, x in b), timeout=0.3)
        c.discover()
        assert got == [] and not c.rings
        assert c.stats.rejected == {how: 1}
    assert sum(how in r.getMessage() for r in caplog.records) == 1
    p.close()


@pytest.mark.usefixtures("as_root")
def test_group_mode_trusts_the_configured_group_only(ring_impl, shm_dir):
    p = Producer("grp", impl=ring_impl, group=0)
    p.write(1, b"from a group member")
    os.chown(p.path, NOBODY, 0)          # another user of group 0, mode 0660
    assert stat.S_IMODE(os.stat(p.path).st_mode) == 0o660
    with ChannelConsumer("grp", impl=ring_impl) as c:
        # the ring (another uid) and the group's wake file (group-writable)
        assert c.stats.rejected == {"foreign_owner": 1, "group_writable": 1}
    with ChannelConsumer("grp", impl=ring_impl, group=0) as c:
        got = []
        c.drain(lambda ring, b: got.extend(bytes(x) for _, x in b), timeout=5)
        assert got == [b"from a group member"] and not c.stats.rejected
    p.close()


# -- item 7: lock and wake files -------------------------------------------------
@pytest.mark.usefixtures("as_root")
def test_squatted_consumer_lock_does_not_stop_the_consumer(ring_impl, shm_dir, caplog):
    caplog.set_level(logging.WARNING, "otelplug.ring")
    squat = shm_dir / "otelplug.sq.consumer"
    squat.write_text("1")
    os.chown(squat, NOBODY, NOBODY)
    p = Producer("sq", impl=ring_impl)
    p.write(1, b"x")
    with ChannelConsumer("sq", impl=ring_impl) as c:
        assert c.drain(timeout=5) == 1
        assert c._lock.path.name == f"otelplug.sq.consumer.{os.geteuid()}"
        with pytest.raises(RuntimeError, match="already has a consumer"):
            ChannelConsumer("sq", impl=ring_impl)     # still one consumer per channel
        assert c.stats.rejected == {"foreign_owner": 1}
    assert sum("owned by uid 65534" in r.getMessage() for r in caplog.records) >= 1
    assert any("taking the consumer lock on" in r.getMessage() for r in caplog.records)
    assert squat.read_text() == "1"
    p.close()


@pytest.mark.usefixtures("as_root")
def test_both_lock_names_squatted_still_starts(ring_impl, shm_dir, caplog):
    caplog.set_level(logging.WARNING, "otelplug.ring")
    for name in ("otelplug.sq2.consumer", f"otelplug.sq2.consumer.{os.geteuid()}"):
        (shm_dir / name).write_text("")
        os.chown(shm_dir / name, NOBODY, NOBODY)
    p = Producer("sq2", impl=ring_impl)
    p.write(1, b"x")
    with ChannelConsumer("sq2", impl=ring_impl) as c:
        assert c.drain(timeout=5) == 1
        assert c.stats.rejected == {"foreign_owner": 2}
    assert any("running without a consumer lock" in r.getMessage() for r in caplog.records)
    p.close()


def test_symlinked_lock_and_wake_never_write_through(ring_impl, shm_dir):
    victim = shm_dir / "precious"
    victim.write_bytes(b"do not touch")
    for suffix in ("consumer", "wake"):
        os.symlink(victim, shm_dir / f"otelplug.sym.{suffix}")
    p = Producer("sym", impl=ring_impl)
    p.write(1, b"x")
    with ChannelConsumer("sym", impl=ring_impl) as c:
        assert c.drain(timeout=5) == 1
        assert c.stats.rejected == {"symlink": 2}     # lock (per-uid one used) and wake (timer)
        assert c._lock.squatted and "symbolic link" in c._lock.squatted
    p.close()
    assert victim.read_bytes() == b"do not touch"


# -- issue 16, defect 5: clean exits leave nothing behind ---------------------
def test_clean_exit_leaves_no_files(ring_impl, shm_dir):
    producers = [Producer("tidy", impl=ring_impl) for _ in range(3)]
    c = ChannelConsumer("tidy", impl=ring_impl)
    for p in producers:
        p.write(1, b"x")
        p.define(7, b"\x01def")
    assert (shm_dir / "otelplug.tidy.wake").exists()
    for p in producers[:2]:
        p.close()
    c.drain(timeout=5)
    c.close()
    assert (shm_dir / "otelplug.tidy.wake").exists()     # a producer still uses it
    producers[2].close()
    c = ChannelConsumer("tidy", impl=ring_impl)
    c.drain(timeout=5, until_no_producers=True)
    c.close()
    assert sorted(os.listdir(shm_dir)) == []


def test_last_one_out_race_gives_newcomers_a_live_wake_file(shm_dir):
    """A newcomer that opened the wake file just before the last holder
    unlinked it must end up on the file the path names."""
    a = WakeFile("race")
    b = WakeFile("race")
    a.release()
    assert (shm_dir / "otelplug.race.wake").exists()
    b.release()
    assert not (shm_dir / "otelplug.race.wake").exists()
    c = WakeFile("race")
    st = os.fstat(c.fd)
    assert (st.st_ino, st.st_dev) == (os.stat(shm_dir / "otelplug.race.wake").st_ino,
                                      os.stat(shm_dir / "otelplug.race.wake").st_dev)
    c.release()


def test_consumer_lock_is_removed_and_reusable(shm_dir):
    lock = ConsumerLock("reuse")
    with pytest.raises(RuntimeError):
        ConsumerLock("reuse")
    lock.release()
    assert not (shm_dir / "otelplug.reuse.consumer").exists()
    ConsumerLock("reuse").release()


# -- item 10: every record lost in corrupt bytes is counted --------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1 << 30), n=st.integers(1, 120), hits=st.integers(1, 6),
       read_first=st.integers(0, 60))
def test_fuzz_written_equals_delivered_plus_counted_lost(ring_impl, shm_dir, seed, n, hits,
                                                         read_first):
    rng = random.Random(seed)
    channel = f"fz{seed % 1000}"
    c = ChannelConsumer(channel, impl=ring_impl, discover_interval=0)
    p = Producer(channel, capacity=1 << 14, impl=ring_impl)
    written = 0
    delivered = 0
    for i in range(n):
        written += p.write(1, bytes([65 + i % 26]) * rng.randrange(0, 300))
        if i == read_first:   # the consumer reads part of it: corruption lands mid-ring
            delivered += c.drain(timeout=5)
    path = p.path
    p.close()
    head = read_header(path.read_bytes()[:HEADER_SIZE])
    cap = head["capacity"]
    with open(path, "r+b") as f:            # a few random bytes in the unread region
        for _ in range(hits):
            unread = head["write_pos"] - head["read_pos"]
            if not unread:
                break
            pos = head["read_pos"] + rng.randrange(unread)
            f.seek(HEADER_SIZE + pos % cap)
            f.write(os.urandom(min(rng.randrange(1, 24), cap - pos % cap)))
    delivered += c.drain(timeout=5, until_no_producers=True)
    c.close()
    (acct,) = c.retired
    assert acct.delivered == delivered
    assert acct.lost_in_flight == 0 and acct.attempted == written + acct.dropped  # ring full
    assert written == delivered + acct.corrupt_records, acct
    event(f"records lost: {'none' if not acct.corrupt_records else 'some'}")


FOREIGN_FAULT = """
import mmap, os, sys
from otelplug._ext import ring
from tests.ring.helpers import Pair
d = sys.argv[1]
p = Pair(ring, d, 1 << 16)            # a guarded reader mapping exists
path = os.path.join(d, "plain")
with open(path, "wb") as f:
    f.write(b"x" * 8192)
fd = os.open(path, os.O_RDWR)
mm = mmap.mmap(fd, 8192)
os.truncate(path, 0)
print("touching", flush=True)
mm[4096]                               # not a ring: must still be a SIGBUS
print("survived", flush=True)
"""


def test_guard_does_not_swallow_faults_elsewhere(shm_dir):
    """The SIGBUS guard absorbs faults in ring mappings only."""
    import signal
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-c", FOREIGN_FAULT, str(shm_dir)],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONFAULTHANDLER=""))
    assert "touching" in res.stdout and "survived" not in res.stdout
    assert res.returncode == -signal.SIGBUS, res
