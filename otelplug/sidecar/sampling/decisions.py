"""A bounded trace-id -> value cache, looked up and filled with numpy.

Both the adaptive sampler (sticky per-trace thresholds, priority keeps)
and the tail sampler (the Collector's sampled / non-sampled decision
caches) must answer "was this trace decided already?" for every span of a
batch.  A 4-way set-associative table does that without a Python operation
per span: each trace id hashes to a bucket of four slots, the key stored
in a slot tells a hit from a collision, and a new entry takes the oldest
slot of its bucket.  So the bound is exact (``size`` entries, 24 bytes
each) and eviction approximates LRU: an entry can go before the table's
oldest one only when four newer entries landed in its bucket, which is
rare until the table is nearly full.  Sizes are rounded up to a power
of two.
"""
from __future__ import annotations

import numpy as np

from .otep235 import trace_id_words

_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xFF51AFD7ED558CCD)


def trace_keys(trace_id: np.ndarray) -> np.ndarray:
    """One uint64 key per trace id (both halves mixed; collisions between
    distinct 128-bit ids are 2**-64 events)."""
    hi, lo = trace_id_words(trace_id)
    with np.errstate(over="ignore"):
        return lo ^ (hi * _MIX2)


WAYS = 4


class DecisionTable:
    def __init__(self, size: int):
        self.size = 0 if size <= 0 else max(WAYS, 1 << max(0, int(size - 1).bit_length()))
        self._bits = (self.size // WAYS).bit_length() - 1 if self.size else 0
        self.keys = np.zeros(self.size, np.uint64)
        self.values = np.zeros(self.size, np.uint64)
        self.stamps = np.zeros(self.size, np.uint64)     # 0: empty, else insertion round
        self._round = 0

    def _ways(self, keys: np.ndarray) -> np.ndarray:
        """(n, WAYS) slot indices: the bucket of each key."""
        if self._bits == 0:
            b = np.zeros(len(keys), np.int64)
        else:
            with np.errstate(over="ignore"):
                b = ((keys * _MIX) >> np.uint64(64 - self._bits)).astype(np.int64)
        return b[:, None] * WAYS + np.arange(WAYS)

    def _find(self, keys):
        ways = self._ways(keys)
        match = (self.stamps[ways] != 0) & (self.keys[ways] == keys[:, None])
        return ways, match

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hit mask, stored values) for each key."""
        if not self.size:
            return np.zeros(len(keys), bool), np.zeros(len(keys), np.uint64)
        ways, match = self._find(keys)
        hit = match.any(axis=1)
        slot = ways[np.arange(len(keys)), match.argmax(axis=1)]
        return hit, np.where(hit, self.values[slot], 0).astype(np.uint64)

    def store(self, keys: np.ndarray, values) -> None:
        """Insert or update; a new key takes the oldest way of its bucket (new
        keys of the same bucket in one call take successive oldest ways)."""
        if not self.size or len(keys) == 0:
            return
        self._round += 1
        values = np.broadcast_to(np.asarray(values, np.uint64), keys.shape)
        ways, match = self._find(keys)
        hit = match.any(axis=1)
        h = np.flatnonzero(hit)
        hslot = ways[h, match[h].argmax(axis=1)]
        self.values[hslot] = values[h]
        self.stamps[hslot] = self._round
        m = np.flatnonzero(~hit)
        if len(m) == 0:
            return
        wm = ways[m]
        oldest = np.argsort(self.stamps[wm], axis=1, kind="stable")
        bucket = wm[:, 0]
        srt = np.argsort(bucket, kind="stable")
        bs = bucket[srt]
        run_start = np.flatnonzero(np.r_[True, bs[1:] != bs[:-1]])
        run_id = np.cumsum(np.r_[True, bs[1:] != bs[:-1]]) - 1
        rank = np.empty(len(m), np.int64)
        rank[srt] = np.arange(len(m)) - run_start[run_id]
        slot = wm[np.arange(len(m)), oldest[np.arange(len(m)), rank % WAYS]]
        self.keys[slot] = keys[m]
        self.values[slot] = values[m]
        self.stamps[slot] = self._round

    def remove(self, keys: np.ndarray) -> None:
        if not self.size or len(keys) == 0:
            return
        ways, match = self._find(keys)
        self.stamps[ways[match]] = 0

    def __len__(self) -> int:
        return int((self.stamps != 0).sum())

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes + self.stamps.nbytes
