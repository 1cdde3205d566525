"""Anomaly scores per series: a robust baseline from recent windows.

Each series (a window's metric for one group) keeps its last ``history``
values.  The baseline is their median and the scale is the median
absolute deviation (times 1.4826, so it estimates a standard deviation
for normal data); the score of a new value is its distance from the median
in scales.  Median and MAD ignore a few outliers, which a mean and
standard deviation would follow.

- learning: until ``min_samples`` values are in, a series reports
  ``learning`` and score 0: a baseline from two windows is not trustworthy;
- flat lines: a series that never changes has MAD 0; the scale is then
  floored at ``relative_floor`` of the median (and ``absolute_floor``), so
  the first change scores high but finite and a constant series scores 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAD_TO_SIGMA = 1.4826


@dataclass
class Score:
    series: tuple
    value: float
    baseline: float
    scale: float
    score: float
    state: str          # learning | normal | anomalous


class Detector:
    """Histories of many series in one array: a window's worth of series is
    scored with numpy in one step (``observe_many``)."""

    def __init__(self, threshold: float = 6.0, history: int = 30, min_samples: int = 8,
                 relative_floor: float = 0.05, absolute_floor: float = 1e-9,
                 max_series: int = 100_000):
        self.threshold, self.history, self.min_samples = threshold, history, min_samples
        self.relative_floor, self.absolute_floor = relative_floor, absolute_floor
        self.max_series = max_series
        self._index: dict[tuple, int] = {}
        self._free: list[int] = []
        self._hist = np.full((0, history), np.nan)
        self._n = np.zeros(0, np.int64)
        self._pos = np.zeros(0, np.int64)
        self._used = 0
        self.dropped_series = 0      # series not tracked because of max_series

    def __len__(self) -> int:
        return len(self._index)

    def _row(self, series: tuple) -> int:
        row = self._index.get(series)
        if row is not None:
            return row
        if len(self._index) >= self.max_series:
            self.dropped_series += 1
            return -1
        if self._free:
            row = self._free.pop()
        else:
            row = self._used
            self._used += 1
            if row >= len(self._n):
                extra = max(len(self._n), 64)
                self._hist = np.concatenate([self._hist, np.full((extra, self.history), np.nan)])
                self._n = np.concatenate([self._n, np.zeros(extra, np.int64)])
                self._pos = np.concatenate([self._pos, np.zeros(extra, np.int64)])
        self._hist[row] = np.nan
        self._n[row] = self._pos[row] = 0
        self._index[series] = row
        return row

    def observe(self, series: tuple, value: float) -> Score | None:
        return self.observe_many([series], [value])[0]

    def observe_many(self, series: list, values) -> list[Score | None]:
        """Scores of ``values[i]`` against the history of ``series[i]``
        (then added to it); None for a series not tracked (max_series)."""
        rows = np.fromiter((self._row(k) for k in series), np.int64, len(series))
        values = np.asarray(values, np.float64)
        out: list[Score | None] = [None] * len(series)
        todo = np.flatnonzero(rows >= 0)
        while len(todo):      # a series twice in one call: its values in turn
            _, first = np.unique(rows[todo], return_index=True)
            now = todo[np.sort(first)]
            self._score(rows[now], values[now], now, series, out)
            todo = np.setdiff1d(todo, now, assume_unique=True)
        return out

    def _score(self, rows, vals, where, series, out) -> None:
        ready = self._n[rows] >= self.min_samples
        med = np.full(len(rows), np.nan)
        scale = np.full(len(rows), np.nan)
        score = np.zeros(len(rows))
        counts = self._n[rows]
        # until a history is full its first n slots are filled: median per
        # group of equal n (a handful), with np.median, not nanmedian's slow path
        for n in np.unique(counts[ready]).tolist():
            sel = np.flatnonzero(ready & (counts == n))
            h = self._hist[rows[sel], :n]
            m = np.median(h, axis=1)
            mad = np.median(np.abs(h - m[:, None]), axis=1) * MAD_TO_SIGMA
            sc = np.maximum(np.maximum(mad, self.relative_floor * np.abs(m)), self.absolute_floor)
            med[sel], scale[sel] = m, sc
            score[sel] = np.abs(vals[sel] - m) / sc
        self._hist[rows, self._pos[rows]] = vals
        self._pos[rows] = (self._pos[rows] + 1) % self.history
        self._n[rows] = np.minimum(self._n[rows] + 1, self.history)
        for j, i in enumerate(where.tolist()):
            state = "learning" if not ready[j] else ("anomalous" if score[j] >= self.threshold else "normal")
            out[i] = Score(series[i], float(vals[j]), float(med[j]), float(scale[j]), float(score[j]), state)

    def forget(self, predicate) -> None:
        """Drop the series for which ``predicate(series)`` holds (expired groups)."""
        for k in [k for k in self._index if predicate(k)]:
            self._free.append(self._index.pop(k))
