"""The consistent hash ring of the Collector's loadbalancing exporter, so
that an otelplug sidecar and a Collector given the same backends send each
trace to the same one.

The ring has 36,000 positions.  Each backend takes 100 of them: position
``crc32(endpoint + bytes([i])) % 36000`` for i in 0..99 (a position already
taken by a backend earlier in sorted order stays with that one).  A key (a
trace id's 16 bytes, or a service name) goes to the backend owning the
first position at or after ``crc32(key) % 36000``, wrapping around.  A
backend joining or leaving moves only the keys of the arcs it takes or
gives back (about 1/n of them).

CRC-32 is zlib's (the same IEEE polynomial as Go's hash/crc32).
"""
from __future__ import annotations

import zlib

import numpy as np

MAX_POSITIONS = 36000
POINTS_PER_ENDPOINT = 100


class HashRing:
    def __init__(self, endpoints):
        self.endpoints = sorted(set(endpoints))
        taken: dict[int, int] = {}
        for e, endpoint in enumerate(self.endpoints):
            raw = endpoint.encode()
            for i in range(POINTS_PER_ENDPOINT):
                taken.setdefault(zlib.crc32(raw + bytes([i])) % MAX_POSITIONS, e)
        pos = sorted(taken)
        self._positions = np.array(pos, np.int64)
        self._owner = np.array([taken[p] for p in pos], np.int64)

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
