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

from collections import deque
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
    def __init__(self, threshold: float = 6.0, history: int = 30, min_samples: int = 8,
                 relative_floor: float = 0.05, absolute_floor: float = 1e-9,
                 max_series: int = 100_000):
        self.threshold, self.history, self.min_samples = threshold, history, min_samples
        self.relative_floor, self.absolute_floor = relative_floor, absolute_floor
        self.max_series = max_series
        self._series: dict[tuple, deque] = {}
        self.dropped_series = 0      # series not tracked because of max_series

    def __len__(self) -> int:
        return len(self._series)

    def observe(self, series: tuple, value: float) -> Score | None:
        h = self._series.get(series)
        if h is None:
            if len(self._series) >= self.max_series:
                self.dropped_series += 1
                return None
            h = self._series[series] = deque(maxlen=self.history)
        if len(h) < self.min_samples:
            h.append(value)
            return Score(series, value, float("nan"), float("nan"), 0.0, "learning")
        arr = np.fromiter(h, dtype=np.float64, count=len(h))
        med = float(np.median(arr))
        mad = float(np.median(np.abs(arr - med))) * MAD_TO_SIGMA
        scale = max(mad, self.relative_floor * abs(med), self.absolute_floor)
        score = abs(value - med) / scale
        h.append(value)
        return Score(series, value, med, scale, score,
                     "anomalous" if score >= self.threshold else "normal")

    def forget(self, predicate) -> None:
        """Drop the series for which ``predicate(series)`` holds (expired groups)."""
        for k in [k for k in self._series if predicate(k)]:
            del self._series[k]
