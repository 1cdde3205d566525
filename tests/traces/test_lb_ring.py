"""The loadbalancing hash ring: deterministic, balanced, minimal remapping."""
from __future__ import annotations

import struct
import zlib

import numpy as np

from otelplug.sidecar.exporters.loadbalancing.ring import MAX_POSITIONS, HashRing

BACKENDS = ["127.0.0.1:4317", "127.0.0.1:4318", "127.0.0.1:4319"]


def trace_ids(n, seed=7):
    return np.random.default_rng(seed).integers(0, 256, (n, 16), dtype=np.uint8)


def by_scan(ring_endpoints, key: bytes) -> str:
    """The rule written out plainly: candidates in (position, hash, name)
    order take their position or one of the next 9; a key belongs to the
    first taken position at or after crc32(key) % 131071, wrapping."""
    cands = sorted((h % MAX_POSITIONS, h, e) for e in ring_endpoints for h in
                   (zlib.crc32(e.encode() + struct.pack("<I", i)) for i in range(200)))
    owners = {}
    for pos, _, e in cands:
        for step in range(10):
            p = (pos + step) % MAX_POSITIONS
            if p not in owners:
                owners[p] = e
                break
    want = zlib.crc32(key) % MAX_POSITIONS
    at = [p for p in sorted(owners) if p >= want]
    return owners[at[0] if at else min(owners)]


def test_routing_follows_the_rule_and_ignores_config_order():
    ring = HashRing(BACKENDS)
    assert ring == HashRing(list(reversed(BACKENDS)))
    ids = trace_ids(300)
    got = ring.route_trace_ids(ids)
    for row, idx in zip(ids, got.tolist()):
        assert ring.endpoints[idx] == by_scan(BACKENDS, row.tobytes())
    assert ring.endpoint_for(b"checkout") == by_scan(BACKENDS, b"checkout")


def test_every_backend_gets_a_share_and_membership_changes_move_little():
    ids = trace_ids(20000)
    three = HashRing(BACKENDS)
    a = np.array(three.endpoints)[three.route_trace_ids(ids)]
    shares = [np.mean(a == b) for b in BACKENDS]
    assert min(shares) > 0.15
    four = HashRing(BACKENDS + ["127.0.0.1:4320"])
    b = np.array(four.endpoints)[four.route_trace_ids(ids)]
    moved = a != b
    # only keys taken over by the new backend move
    assert set(b[moved]) == {"127.0.0.1:4320"} and 0.1 < moved.mean() < 0.45
    two = HashRing(BACKENDS[:2])
    c = np.array(two.endpoints)[two.route_trace_ids(ids)]
    assert np.all(c[a != BACKENDS[2]] == a[a != BACKENDS[2]])
