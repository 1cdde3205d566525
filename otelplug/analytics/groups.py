"""Groups (dimension sets) numbered for numpy, with a cardinality limit
and expiry of idle groups.

Group 0 is the overflow group: once ``limit`` groups exist, items of a new
group are counted there, with the attribute ``otel.metric.overflow=true``
as the OpenTelemetry metrics SDK does for its cardinality limit.  Groups
not seen for ``expiry`` seconds are forgotten and their ids reused; the
caller keeps ``expiry`` longer than any window it has open, so a reused id
never lands in a window that still holds the old group.
"""
from __future__ import annotations

import numpy as np

OVERFLOW = 0
OVERFLOW_ATTRIBUTES = {"otel.metric.overflow": True}


class GroupTable:
    def __init__(self, limit: int, expiry_ns: int):
        self.limit = limit
        self.expiry_ns = expiry_ns
        self._ids: dict[tuple, int] = {}
        self.attributes: list[dict | None] = [dict(OVERFLOW_ATTRIBUTES)]
        self._keys: list[tuple | None] = [None]
        self._free: list[int] = []
        self.last_seen = np.zeros(1, dtype=np.int64)
        self.overflow_items = 0      # items counted in the overflow group
        self.expired = 0             # groups forgotten for being idle

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def capacity(self) -> int:
        return len(self.attributes)

    def ids(self, keys, attributes, counts, now_ns: int) -> np.ndarray:
        """Ids of the batch's distinct ``keys`` (hashable; ``attributes[i]``
        makes the dict of a new one), ``counts[i]`` items each."""
        out = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            gid = self._ids.get(key)
            if gid is None:
                if len(self._ids) >= self.limit:
                    gid = OVERFLOW
                    self.overflow_items += int(counts[i])
                else:
                    gid = self._new(key, attributes(i))
            out[i] = gid
        self.last_seen[out] = now_ns
        return out

    def _new(self, key, attrs) -> int:
        if self._free:
            gid = self._free.pop()
            self.attributes[gid], self._keys[gid] = attrs, key
        else:
            gid = len(self.attributes)
            self.attributes.append(attrs)
            self._keys.append(key)
            if gid >= len(self.last_seen):
                self.last_seen = np.concatenate([self.last_seen, np.zeros(max(gid, 64), np.int64)])
        self._ids[key] = gid
        return gid

    def expire(self, now_ns: int) -> list[int]:
        """Forget groups idle for longer than the expiry; their ids."""
        if self.expiry_ns <= 0:
            return []
        n = len(self.attributes)
        idle = np.flatnonzero(self.last_seen[:n] < now_ns - self.expiry_ns)
        gone = []
        for gid in idle.tolist():
            key = self._keys[gid]
            if gid == OVERFLOW or key is None:
                continue
            del self._ids[key]
            self._keys[gid] = self.attributes[gid] = None
            self._free.append(gid)
            gone.append(gid)
        self.expired += len(gone)
        return gone
