"""A DDSketch-style quantile sketch for many groups at once.

Values (durations in nanoseconds) fall into logarithmic buckets
``(gamma^(i-1), gamma^i]`` with ``gamma = (1 + alpha) / (1 - alpha)``;
a bucket is reported as ``2 gamma^i / (gamma + 1)``, which is within a
relative error ``alpha`` of every value in it (Masson, Rim & Lee, "DDSketch",
VLDB 2019).  So a quantile read from the sketch is within ``alpha`` of the
exact value at the same rank (numpy's ``method="lower"`` rank
``floor(q * (n - 1))``).  Values below 1 ns are kept in bucket 0 as 0.

Counts per (group, bucket) are stored sparsely as one sorted int64 key
``group * NBUCKETS + bucket`` with a count: a group uses only the buckets
its values hit, and adding a batch, merging sketches from other processes
or other windows are the same operation (concatenate, then sum equal keys),
so merges are exact.  All of it is numpy: no Python step per value.

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

    __slots__ = ("mapping", "keys", "counts", "_pending")

    def __init__(self, mapping: Mapping):
        self.mapping = mapping
        self.keys = np.empty(0, dtype=np.int64)
        self.counts = np.empty(0, dtype=np.float64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, groups: np.ndarray, values: np.ndarray, weights=None, buckets=None) -> None:
        """Add ``values[i]`` to group ``groups[i]``; ``buckets`` are their
        bucket indices when the caller already has them (several windows
        fed from one batch compute them once)."""
        if len(groups) == 0:
            return
        if buckets is None:
            buckets = self.mapping.index(values)
        keys = np.asarray(groups, dtype=np.int64) * self.mapping.nbuckets + buckets
        w = np.ones(len(keys)) if weights is None else np.asarray(weights, dtype=np.float64)
        self._pending.append((keys, w))
        if len(self._pending) > 16:
            self._compact()

    def merge(self, other: "GroupSketch", group_map: np.ndarray | None = None) -> None:
        """Add every count of ``other`` (a sketch of the same accuracy);
        ``group_map[g]`` renames its group ``g`` (e.g. into an overflow group)."""
        if other.mapping.nbuckets != self.mapping.nbuckets:
            raise ValueError("sketches of different accuracy do not merge")
        other._compact()
        keys = other.keys
        if group_map is not None and len(keys):
            nb = self.mapping.nbuckets
            keys = np.asarray(group_map, dtype=np.int64)[keys // nb] * nb + keys % nb
        self._pending.append((keys, other.counts))
        self._compact()

    def _compact(self) -> None:
        if not self._pending:
            return
        keys = np.concatenate([self.keys, *(k for k, _ in self._pending)])
        counts = np.concatenate([self.counts, *(c for _, c in self._pending)])
        self._pending.clear()
        if not len(keys):
            return
        lo, hi = int(keys.min()), int(keys.max())
        if hi - lo < 4 * len(keys) + (1 << 22):
            # a dense count over the key range is ~15x cheaper than sorting
            dense = np.bincount(keys - lo, weights=counts, minlength=hi - lo + 1)
            nz = np.flatnonzero(dense)
            self.keys, self.counts = nz + lo, dense[nz]
        else:
            self.keys, inv = np.unique(keys, return_inverse=True)
            self.counts = np.bincount(inv.reshape(-1), weights=counts, minlength=len(self.keys))

    def drop_groups(self, groups) -> None:
        """Forget these groups (expired)."""
        self._compact()
        if len(self.keys):
            keep = ~np.isin(self.keys // self.mapping.nbuckets, np.asarray(list(groups), np.int64))
            self.keys, self.counts = self.keys[keep], self.counts[keep]

    def entries(self) -> int:
        self._compact()
        return len(self.keys)

    def nbytes(self) -> int:
        self._compact()
        return self.keys.nbytes + self.counts.nbytes

    def quantiles(self, groups: np.ndarray, qs) -> np.ndarray:
        """``out[j, k]``: quantile ``qs[k]`` of group ``groups[j]`` (NaN
        for a group without values)."""
        self._compact()
        groups = np.asarray(groups, dtype=np.int64)
        out = np.full((len(groups), len(qs)), np.nan)
        if not len(self.keys) or not len(groups):
            return out
        nb = self.mapping.nbuckets
        kg = self.keys // nb
        cum = np.cumsum(self.counts)
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
            vals = self.mapping.value(self.keys[pos] % nb)
            out[:, k] = np.where(has, vals, np.nan)
        return out
