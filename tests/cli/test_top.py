"""``otelplug top`` against real producer processes and broken folders."""
from __future__ import annotations

import json
import os
import signal

from otelplug.ring import ChannelConsumer
from otelplug.ring import inspect as ring_inspect
from otelplug.ring.layout import HEADER_SIZE

from .helpers import run_cli, start_cli

COUNTERS = ("attempted", "written", "written_bytes", "dropped_full", "dropped_full_bytes",
            "oversize", "oversize_bytes", "used_bytes")


def top_json(*args: str) -> dict:
    res = run_cli("top", "--json", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def by_pid(doc: dict, channel: str) -> dict[int, dict]:
    [ch] = [c for c in doc["channels"] if c["channel"] == channel]
    return {p["pid"]: p for p in ch["producers"]}


def test_json_matches_true_counts(start_writer):
    # a 64 KiB ring without a consumer: the 3000 writes overflow it, so the
    # full-drop counters are exercised too, and 2 records are oversize
    a = start_writer("alpha", count=3000, oversize=2)
    b = start_writer("alpha", count=40)
    c = start_writer("beta", count=7)
    assert a.truth["dropped_full"] > 0 and a.truth["oversize"] == 2

    doc = top_json()
    assert [ch["channel"] for ch in doc["channels"]] == ["alpha", "beta"]
    assert doc["errors"] == []
    rings = by_pid(doc, "alpha") | by_pid(doc, "beta")
    assert set(rings) == {a.pid, b.pid, c.pid}
    for w in (a, b, c):
        r = rings[w.pid]
        for name in COUNTERS:
            assert r[name] == w.truth[name], (name, r, w.truth)
        assert r["dropped"] == w.truth["dropped_full"] + w.truth["oversize"]
        assert r["alive"] is True and r["closed"] is False
        assert r["capacity"] == 1 << 16
        assert r["read"] == 0 and r["pending"] == w.truth["written"]
        assert r["corrupt"] == 0 and r["consumer_pid"] == 0
        assert 0 <= r["age_s"] < 60

    # --channel shows only that channel
    only = top_json("--channel", "beta")
    assert [ch["channel"] for ch in only["channels"]] == ["beta"]

    # a consumer reads everything: read counts, pending and fill follow
    with ChannelConsumer("alpha") as consumer:
        got = consumer.drain(timeout=5)
        assert got == a.truth["written"] + b.truth["written"]
        doc = top_json("--channel", "alpha")
        assert doc["channels"][0]["consumer_pid"] == os.getpid()
        for w in (a, b):
            r = by_pid(doc, "alpha")[w.pid]
            assert r["read"] == w.truth["written"]
            assert r["read_bytes"] == w.truth["written_bytes"]
            assert r["pending"] == 0 and r["used_bytes"] == 0
            assert r["consumer_pid"] == os.getpid()

    # producers that went away show as not alive (the rings stay until reclaimed)
    a.stop()
    b.stop()
    rings = by_pid(top_json("--channel", "alpha"), "alpha")
    assert rings[a.pid]["alive"] is False and rings[a.pid]["closed"] is True
    assert rings[b.pid]["alive"] is False


def test_text_table_lists_pids(start_writer):
    writers = [start_writer("alpha", count=10), start_writer("gamma", count=10)]
    res = run_cli("top")
    assert res.returncode == 0, res.stderr
    for w in writers:
        line = next(l for l in res.stdout.splitlines() if f" {w.pid} " in l)
        assert "yes" in line   # alive
    assert "alpha" in res.stdout and "gamma" in res.stdout


def test_bad_segments_are_error_rows(shm_dir, start_writer):
    good = start_writer("alpha", count=5)
    (shm_dir / "otelplug.alpha.1.deadbeef.ring").write_bytes(b"junk")           # too small
    (shm_dir / "otelplug.alpha.2.cafe.ring").write_bytes(bytes(HEADER_SIZE + 4096))  # bad magic
    (shm_dir / "otelplug.no-nonce.ring").write_bytes(b"")                       # bad name
    res = run_cli("top")
    assert res.returncode == 0, res.stderr
    assert str(good.pid) in res.stdout
    errors = [l for l in res.stdout.splitlines() if l.startswith("ERROR")]
    assert len(errors) == 3
    for name in ("otelplug.alpha.1.deadbeef.ring", "otelplug.alpha.2.cafe.ring",
                 "otelplug.no-nonce.ring"):
        assert any(name in l for l in errors), (name, errors)

    doc = top_json()
    assert set(by_pid(doc, "alpha")) == {good.pid}
    [alpha] = doc["channels"]
    assert sorted(os.path.basename(e["path"]) for e in alpha["errors"]) == [
        "otelplug.alpha.1.deadbeef.ring", "otelplug.alpha.2.cafe.ring"]
    assert "bad magic" in " ".join(e["error"] for e in alpha["errors"])
    assert [os.path.basename(e["path"]) for e in doc["errors"]] == ["otelplug.no-nonce.ring"]


def test_empty_and_missing_folder(shm_dir, monkeypatch):
    res = run_cli("top")
    assert res.returncode == 0 and "no rings" in res.stdout
    assert top_json()["channels"] == []

    monkeypatch.setenv("OTELPLUG_SHM_DIR", str(shm_dir / "missing"))
    res = run_cli("top")
    assert res.returncode == 0 and "does not exist" in res.stdout
    doc = top_json()
    assert doc["shm_dir_exists"] is False and doc["channels"] == []


def test_invalid_channel_name():
    res = run_cli("top", "--channel", "no/slashes")
    assert res.returncode == 2 and "invalid otelplug channel name" in res.stderr


def test_segment_vanishing_mid_read(start_writer, monkeypatch):
    """A ring reclaimed between the listing and the read is skipped, not an error."""
    gone, stays = start_writer("alpha"), start_writer("alpha")
    real_read = ring_inspect.read_ring

    def reclaimed_first(path, now_ns=None):
        if f".{gone.pid}." in path.name:
            path.unlink()
        return real_read(path, now_ns)

    monkeypatch.setattr(ring_inspect, "read_ring", reclaimed_first)
    snap = ring_inspect.snapshot()
    [alpha] = snap.channels
    assert [r.pid for r in alpha.producers] == [stays.pid] and alpha.errors == []


def test_dead_producer_claimed_by_consumer_is_not_alive(start_writer):
    """After its producer dies the consumer holds the segment's exclusive
    lock until it is drained; that must not read as "alive"."""
    w = start_writer("alpha", count=10)
    w.stop()
    with ChannelConsumer("alpha", reclaim=False):   # claims the dead ring, keeps it
        [r] = ring_inspect.snapshot("alpha").channels[0].producers
        assert r.pid == w.pid and r.alive is False


def test_watch_refreshes_with_rates(start_writer):
    w = start_writer("alpha", count=10)
    proc = start_cli("top", "--json", "--watch", "0.2")
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    first, second = (json.loads(l) for l in lines)
    assert "rates" not in first["channels"][0]["producers"][0]
    rates = second["channels"][0]["producers"][0]["rates"]
    assert rates["written_per_s"] == 0 and rates["dropped_per_s"] == 0

    # the text form shows the rate columns from the second refresh on
    proc = start_cli("top", "--watch", "0.2")
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "WRITE/s" in line:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert any(f" {w.pid} " in l for l in seen)


def test_dead_consumer_is_marked_dead(start_writer):
    """Issue 16, defect 7: a SIGKILLed consumer leaves its pid in the lock
    file and in the ring headers; top marks it dead (its flock is gone)."""
    import subprocess
    import sys
    start_writer("gone", count=5)
    code = ("from otelplug.ring import ChannelConsumer; import sys, time\n"
            "c = ChannelConsumer('gone'); c.drain(timeout=5); print('ready', flush=True)\n"
            "time.sleep(60)\n")
    consumer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert consumer.stdout.readline().strip() == "ready"
        doc = top_json("--channel", "gone")
        ch = doc["channels"][0]
        assert ch["consumer_pid"] == consumer.pid and ch["consumer_alive"] is True
        assert f"{consumer.pid} (dead)" not in run_cli("top", "--channel", "gone").stdout
    finally:
        consumer.send_signal(signal.SIGKILL)
        consumer.wait()
    ch = top_json("--channel", "gone")["channels"][0]
    assert ch["consumer_pid"] == consumer.pid and ch["consumer_alive"] is False
    [ring] = ch["producers"]
    assert ring["consumer_pid"] == consumer.pid
    table = run_cli("top", "--channel", "gone").stdout
    assert table.count(f"{consumer.pid} (dead)") == 2, table   # the ring row and the lock line
