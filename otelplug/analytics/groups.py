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
        self._codes = np.empty(0, np.int64)       # sorted codes of known groups
        self._code_ids = np.empty(0, np.int64)
        self.overflow_items = 0      # items counted in the overflow group
        self.expired = 0             # groups forgotten for being idle

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def capacity(self) -> int:
        return len(self.attributes)

    def ids(self, keys, attributes, counts, now_ns: int, codes=None) -> np.ndarray:
        """Ids of the batch's distinct groups, ``counts[i]`` items each.

        ``keys[i]`` is group i's hashable key and ``attributes(i)`` makes
        its dict; both are only asked for groups not seen before when the
        caller gives ``codes``: int64 numbers that stay the same for the
        same group across batches.  Known codes are looked up with numpy
        (``searchsorted``), so a steady stream of known groups costs no
        Python step per group."""
        counts = np.asarray(counts)
        if codes is None:
            out = np.fromiter((self._id_for(keys[i], attributes, i, counts[i]) for i in range(len(counts))),
                              np.int64, len(counts))
        else:
            codes = np.asarray(codes, np.int64)
            out = np.empty(len(codes), np.int64)
            pos = np.minimum(np.searchsorted(self._codes, codes), max(len(self._codes) - 1, 0))
            hit = (self._codes[pos] == codes) if len(self._codes) else np.zeros(len(codes), bool)
            out[hit] = self._code_ids[pos[hit]]
            self.overflow_items += int(counts[hit & (out == OVERFLOW)].sum())
            miss = np.flatnonzero(~hit)
            if len(miss):
                for j in miss.tolist():
                    out[j] = self._id_for(keys[j], attributes, j, counts[j])
                c = np.concatenate([self._codes, codes[miss]])
                order = np.argsort(c, kind="stable")
                self._codes = c[order]
                self._code_ids = np.concatenate([self._code_ids, out[miss]])[order]
        self.last_seen[out] = now_ns
        return out

    def forget_codes(self) -> None:
        self._codes, self._code_ids = np.empty(0, np.int64), np.empty(0, np.int64)

    def _id_for(self, key, attributes, j, count) -> int:
        gid = self._ids.get(key)
        if gid is None:
            if len(self._ids) >= self.limit:
                self.overflow_items += int(count)
                return OVERFLOW
            gid = self._new(key, attributes(j))
        return gid

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
        if gone and len(self._codes):
            # forget the codes of expired groups, and of groups sent to the
            # overflow group: there may be room for them now
            keep = ~np.isin(self._code_ids, np.asarray(gone + [OVERFLOW], np.int64))
            self._codes, self._code_ids = self._codes[keep], self._code_ids[keep]
        return gone
