"""A DDSketch-style quantile sketch for many groups at once.

Values (durations in nanoseconds) fall into logarithmic buckets
``(gamma^(i-1), gamma^i]`` with ``gamma = (1 + alpha) / (1 - alpha)``;
a bucket is reported as ``2 gamma^i / (gamma + 1)``, which is within a
relative error ``alpha`` of every value in it (Masson, Rim & Lee, "DDSketch",
VLDB 2019).  So a quantile read from the sketch is within ``alpha`` of the
exact value at the same rank (numpy's ``method="lower"`` rank
``floor(q * (n - 1))``).  Values below 1 ns are kept in bucket 0 as 0.

Counts per (group, bucket) are stored sparsely, as arrays of group,
bucket and count: a group uses only the buckets its values hit, and adding
a batch, merging sketches from other processes or other windows are the
same operation (concatenate, then sum equal (group, bucket) pairs), so
merges are exact.  All of it is numpy: no Python step per value.

The ``ddsketch`` package (DataDog) keeps one sketch object per group and
adds values one Python call at a time, which is what a batch of spans
must not cost; bench/analytics.py measures both.
"""
from __future__ import annotations

import math

import numpy as np

DEFAULT_RELATIVE_ACCURACY = 0.01


class Mapping:
    """Value <-> bucket index for one relative accuracy."""

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY):
        if not 0 < relative_accuracy < 1:
            raise ValueError("relative_accuracy must be between 0 and 1")
        self.alpha = relative_accuracy
        self.gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._inv_log_gamma = 1.0 / math.log(self.gamma)
        # int64 nanoseconds up to 2^63 fit; +2 for bucket 0 and rounding
        self.nbuckets = int(math.ceil(63 * math.log(2) * self._inv_log_gamma)) + 2

    def index(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            idx = np.ceil(np.log(v) * self._inv_log_gamma)
        idx = np.where(v >= 1.0, idx, 0.0)
        return np.clip(idx, 0, self.nbuckets - 1).astype(np.int64)

    def value(self, index: np.ndarray) -> np.ndarray:
        i = np.asarray(index, dtype=np.float64)
        return np.where(i > 0, 2.0 * np.power(self.gamma, i) / (self.gamma + 1.0), 0.0)


class GroupSketch:
    """Bucket counts for any number of groups, sparse, mergeable."""

    __slots__ = ("mapping", "gid", "bucket", "counts", "_pending", "_pending_n")

    def __init__(self, mapping: Mapping):
        self.mapping = mapping
        self.gid = np.empty(0, dtype=np.int64)
        self.bucket = np.empty(0, dtype=np.int64)
        self.counts = np.empty(0, dtype=np.float64)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_n = 0

    def add(self, groups: np.ndarray, values: np.ndarray, weights=None, buckets=None) -> None:
        """Add ``values[i]`` to group ``groups[i]``; ``buckets`` are their
        bucket indices when the caller already has them (several windows
        fed from one batch compute them once)."""
        if len(groups) == 0:
            return
        if buckets is None:
            buckets = self.mapping.index(values)
        w = np.ones(len(groups)) if weights is None else np.asarray(weights, dtype=np.float64)
        self._pending.append((np.asarray(groups, dtype=np.int64), np.asarray(buckets, np.int64), w))
        self._pending_n += len(groups)
        # compact when the pending entries outnumber the stored ones: each
        # compaction then costs about as much as the adds since the last
        # one, so adding stays linear while memory stays bounded
        if self._pending_n > max(2 * len(self.gid), 1 << 17):
            self._compact()

    def merge(self, other: "GroupSketch", group_map: np.ndarray | None = None) -> None:
        """Add every count of ``other`` (a sketch of the same accuracy);
        ``group_map[g]`` renames its group ``g`` (e.g. into an overflow group)."""
        if other.mapping.nbuckets != self.mapping.nbuckets:
            raise ValueError("sketches of different accuracy do not merge")
        other._compact()
        gid = other.gid
        if group_map is not None and len(gid):
            gid = np.asarray(group_map, dtype=np.int64)[gid]
        self._pending.append((gid, other.bucket, other.counts))
        self._pending_n += len(gid)

    def _compact(self) -> None:
        if not self._pending:
            return
        gid = np.concatenate([self.gid, *(p[0] for p in self._pending)])
        bucket = np.concatenate([self.bucket, *(p[1] for p in self._pending)])
        counts = np.concatenate([self.counts, *(p[2] for p in self._pending)])
        self._pending.clear()
        self._pending_n = 0
        if not len(gid):
            return
        # one code per (bucket, group), bucket-major: durations cluster in
        # a few hundred buckets, so the code range stays near
        # groups x buckets used, small enough to count densely
        g_n = int(gid.max()) + 1
        b_lo = int(bucket.min())
        code = (bucket - b_lo) * g_n + gid
        space = (int(bucket.max()) - b_lo + 1) * g_n
        if space <= 8 * len(code) + (1 << 16):
            # a dense count over the code range: ~15x cheaper than sorting
            dense = np.bincount(code, weights=counts, minlength=space)
            uniq = np.flatnonzero(dense)
            self.counts = dense[uniq]
        else:
            uniq, inv = np.unique(code, return_inverse=True)
            self.counts = np.bincount(inv.reshape(-1), weights=counts, minlength=len(uniq))
        self.gid, self.bucket = uniq % g_n, uniq // g_n + b_lo

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(group, bucket, count) arrays: what another process needs to
        merge this sketch (``from_state``)."""
        self._compact()
        return self.gid, self.bucket, self.counts

    @classmethod
    def from_state(cls, mapping: Mapping, state) -> "GroupSketch":
        s = cls(mapping)
        s.gid, s.bucket, s.counts = (np.asarray(a) for a in state)
        return s

    def drop_groups(self, groups) -> None:
        """Forget these groups (expired)."""
        self._compact()
        if len(self.gid):
            keep = ~np.isin(self.gid, np.asarray(list(groups), np.int64))
            self.gid, self.bucket, self.counts = self.gid[keep], self.bucket[keep], self.counts[keep]

    def entries(self) -> int:
        self._compact()
        return len(self.gid)

    def nbytes(self) -> int:
        self._compact()
        return self.gid.nbytes + self.bucket.nbytes + self.counts.nbytes

    def quantiles(self, groups: np.ndarray, qs) -> np.ndarray:
        """``out[j, k]``: quantile ``qs[k]`` of group ``groups[j]`` (NaN
        for a group without values)."""
        self._compact()
        groups = np.asarray(groups, dtype=np.int64)
        out = np.full((len(groups), len(qs)), np.nan)
        if not len(self.gid) or not len(groups):
            return out
        nb = self.mapping.nbuckets
        order = np.argsort(self.gid * nb + self.bucket, kind="stable")   # by group, then bucket
        kg, kb, cnt = self.gid[order], self.bucket[order], self.counts[order]
        cum = np.cumsum(cnt)
        lo = np.searchsorted(kg, groups, side="left")
        hi = np.searchsorted(kg, groups, side="right")
        has = hi > lo
        before = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
        total = np.where(has, cum[np.maximum(hi - 1, 0)] - before, 0.0)
        for k, q in enumerate(qs):
            # the item at rank floor(q (n-1)) (0-based) is the first whose
            # cumulative count exceeds that rank
            rank = np.floor(q * np.maximum(total - 1, 0))
            pos = np.searchsorted(cum, before + rank, side="right")
            pos = np.minimum(pos, len(cum) - 1)
            out[:, k] = np.where(has, self.mapping.value(kb[pos]), np.nan)
        return out
