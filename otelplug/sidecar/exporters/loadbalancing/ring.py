"""The consistent hash ring of the Collector's loadbalancing exporter (as
of contrib v0.161.0, the release tests/peers builds), so that an otelplug
sidecar and a Collector given the same backends send each trace to the
same one (tests/traces/test_loadbalancing_vs_collector.py checks it
against the real Collector).

The ring has 131,071 positions.  Each backend (its name as resolved, e.g.
``host:port`` or a bare address) puts 200 candidates on it: candidate i
hashes ``crc32(name + i as 4 little-endian bytes)`` and wants position
``hash % 131071``.  Candidates are placed in order of (position, hash,
name); one whose position is taken moves to the next free one, giving up
after 9 steps.  A key (a trace id's 16 bytes, or a service name) goes to
the backend owning the first position at or after ``crc32(key) % 131071``,
wrapping around.  A backend joining or leaving only takes or gives back
its own arcs, so about 1/n of the keys move.

CRC-32 is zlib's (the IEEE polynomial, as Go's hash/crc32).
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

MAX_POSITIONS = 131071
POINTS_PER_ENDPOINT = 200
PROBE_LIMIT = 10


def _place(endpoints: list[str]) -> dict[int, int]:
    """position -> index of the endpoint owning it."""
    candidates = []
    for e, name in enumerate(endpoints):
        raw = name.encode()
        for i in range(POINTS_PER_ENDPOINT):
            h = zlib.crc32(raw + struct.pack("<I", i))
            candidates.append((h % MAX_POSITIONS, h, name, e))
    candidates.sort()
    owner: dict[int, int] = {}
    for pos, _h, _name, e in candidates:
        probed = 0
        while pos in owner and probed < PROBE_LIMIT:
            pos = (pos + 1) % MAX_POSITIONS
            probed += 1
        if probed >= PROBE_LIMIT:
            continue          # as the Collector: no free spot near, no candidate
        owner[pos] = e
    return owner


class HashRing:
    def __init__(self, endpoints):
        self.endpoints = sorted(set(endpoints))
        owner = _place(self.endpoints)
        pos = sorted(owner)
        self._positions = np.array(pos, np.int64)
        self._owner = np.array([owner[p] for p in pos], np.int64)

    def __eq__(self, other) -> bool:
        return isinstance(other, HashRing) and self.endpoints == other.endpoints

    def __len__(self) -> int:
        return len(self.endpoints)

    def index_of_hashes(self, hashes: np.ndarray) -> np.ndarray:
        """Backend index (into ``endpoints``) for each crc32 value."""
        if not self.endpoints:
            raise LookupError("the ring has no backends")
        slot = np.searchsorted(self._positions, np.asarray(hashes, np.int64) % MAX_POSITIONS,
                               side="left")
        slot[slot == len(self._positions)] = 0
        return self._owner[slot]

    def endpoint_for(self, key: bytes) -> str:
        return self.endpoints[int(self.index_of_hashes(np.array([zlib.crc32(key)]))[0])]

    def route_trace_ids(self, trace_id: np.ndarray) -> np.ndarray:
        """Backend index per row of an (n, 16) uint8 trace-id column; one
        crc32 per distinct trace."""
        if not len(trace_id):
            return np.zeros(0, np.int64)
        uniq, inverse = np.unique(np.ascontiguousarray(trace_id).view("V16").ravel(),
                                  return_inverse=True)
        hashes = np.fromiter((zlib.crc32(u.tobytes()) for u in uniq), np.int64, len(uniq))
        return self.index_of_hashes(hashes)[inverse.ravel()]
