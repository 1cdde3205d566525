"""The merged view of every producer process's metrics.

Each producer process writes its own cumulative (or delta) points, under a
resource that names the process (``process.pid``, stamped by otelplug, or
``service.instance.id``).  A scrape must show one series per label set, not
one per worker, so:

- counters and histograms are summed across processes.  Cumulative points:
  the last value per (process, series) is kept and the sum taken at scrape
  time.  Delta points: accumulated.
- a counter never goes backwards.  When a process's series restarts (a
  lower value, or a new start time) or a process goes away (its series not
  updated for ``metric_expiration``), its last value moves into the series'
  retained ``offset``, which stays in the sum.  So a restarted worker, or an
  expired dead one, never makes Prometheus see a reset.
- non-monotonic sums (up-down counters) are summed over the live processes;
  a dead process's share goes away when it expires.
- gauges are kept per process (a label names the process) or aggregated
  over the live processes (sum, max, min, or the most recent value).

Series are keyed by their final Prometheus labels, so anything that makes
two processes' points differ only in process identity lands in one series.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np

from otelplug.codec import types as t

from . import naming

log = logging.getLogger("otelplug.sidecar")

COUNTER, UPDOWN, GAUGE, HISTOGRAM = "counter", "updown", "gauge", "histogram"
CUMULATIVE, DELTA = 2, 1      # OTLP AggregationTemporality


class Target:
    """One producer process (one resource definition)."""
    __slots__ = ("key", "labels", "process", "info", "seen")

    def __init__(self, key, labels, process, info):
        self.key = key            # resource definition key: the process identity
        self.labels = labels      # labels every series of this process gets
        self.process = process    # value of the per-process gauge label
        self.info = info          # target_info labels, or None
        self.seen = 0.0


class _Share:
    """One process's contribution to a series."""
    __slots__ = ("value", "start", "time", "seen")

    def __init__(self, value, start, time_, seen):
        self.value, self.start, self.time, self.seen = value, start, time_, seen


class Series:
    __slots__ = ("labels", "offset", "shares", "bounds", "seen")

    def __init__(self, labels: tuple):
        self.labels = labels      # sorted (name, value) pairs
        self.offset = None        # retained total (counters, histograms, delta sums)
        self.shares: dict = {}    # target key -> _Share
        self.bounds = None        # histogram bucket bounds
        self.seen = 0.0


class Family:
    __slots__ = ("name", "mode", "help", "series")

    def __init__(self, name, mode, help_):
        self.name, self.mode, self.help = name, mode, help_
        self.series: dict[tuple, Series] = {}

    @property
    def prom_type(self) -> str:
        return {COUNTER: "counter", UPDOWN: "gauge", GAUGE: "gauge",
                HISTOGRAM: "histogram"}[self.mode]


def _add(a, b):
    return b if a is None else a + b


class MergedMetrics:
    """Thread-safe store; ``ingest`` from the pipeline, ``snapshot`` per scrape."""

    def __init__(self, *, expiration: float, gauge_aggregation: str = "per_process",
                 process_label: str = "process_pid", clock=time.monotonic):
        self.expiration = expiration
        self.gauge_aggregation = gauge_aggregation
        self.process_label = process_label
        self.clock = clock
        self.families: dict[str, Family] = {}
        self.targets: dict[int, Target] = {}
        self._lock = threading.Lock()
        self._warned: set = set()
        self.dropped_points = 0
        self._last_sweep = 0.0

    def _warn_once(self, key, msg, *args):
        self.dropped_points += 1
        if key not in self._warned and len(self._warned) < 1000:
            self._warned.add(key)
            log.warning(msg, *args)

    # -- ingest ----------------------------------------------------------------
    def ingest(self, target: Target, metric, prom_name: str, scope_labels: dict,
               extra_labels: dict, attr_cache: dict) -> None:
        """Merge the points of one decoded metric (``codec.model.MetricData``)."""
        kind = metric.kind
        if kind == t.M_SUM:
            mode = COUNTER if metric.is_monotonic else UPDOWN
        elif kind == t.M_GAUGE:
            mode = GAUGE
        elif kind == t.M_HISTOGRAM:
            mode = HISTOGRAM
        else:
            self._warn_once(("exp", metric.name),
                            "prometheus: exponential histogram %r is not exported "
                            "(the text formats have no native histograms)", metric.name)
            return
        delta = metric.temporality == DELTA and mode != GAUGE
        now = self.clock()
        per_process = mode == GAUGE and self.gauge_aggregation == "per_process"
        with self._lock:
            target.seen = now
            self.targets[target.key] = target
            fam = self.families.get(prom_name)
            if fam is None:
                fam = self.families[prom_name] = Family(prom_name, mode,
                                                        metric.description or metric.name)
            elif fam.mode != mode:
                self._warn_once(("conflict", prom_name),
                                "prometheus: %r is both a %s and a %s; keeping the first",
                                prom_name, fam.mode, mode)
                return
            for p in metric.points:
                labels = dict(target.labels)
                labels.update(scope_labels)
                labels.update(naming.labels_from_attributes(p.attributes, attr_cache))
                if per_process:
                    labels[self.process_label] = target.process
                for k, v in extra_labels.items():
                    labels.setdefault(k, v)
                if "le" in labels and mode == HISTOGRAM:
                    del labels["le"]
                key = tuple(sorted(labels.items()))
                s = fam.series.get(key)
                if s is None:
                    s = fam.series[key] = Series(key)
                s.seen = now
                if mode == HISTOGRAM:
                    bounds = tuple(p.explicit_bounds)
                    if s.bounds is None:
                        s.bounds = bounds
                    elif s.bounds != bounds:
                        self._warn_once(("bounds", prom_name),
                                        "prometheus: %r: a process uses other bucket bounds "
                                        "(%s, not %s); its points are dropped", prom_name,
                                        bounds, s.bounds)
                        continue
                    value = np.array([p.count, p.sum, *p.bucket_counts], dtype=np.float64)
                else:
                    value = p.value
                if delta:
                    s.offset = _add(s.offset, value)
                    continue
                start = p.start_time_unix_nano
                old = s.shares.get(target.key)
                if old is not None and start == old.start and p.time_unix_nano <= old.time:
                    # a repeat or an older point (delivery is at-least-once):
                    # taking it would look like a reset and count twice
                    old.seen = now
                    continue
                if old is not None and mode in (COUNTER, HISTOGRAM):
                    restarted = (start != old.start) or (
                        value[0] < old.value[0] if mode == HISTOGRAM else value < old.value)
                    if restarted:  # keep what the old run counted
                        s.offset = _add(s.offset, old.value)
                if old is None:
                    s.shares[target.key] = _Share(value, start, p.time_unix_nano, now)
                else:
                    old.value, old.start, old.time, old.seen = value, start, p.time_unix_nano, now

    # -- expiry ----------------------------------------------------------------
    def sweep(self, force: bool = False) -> None:
        """Retire what no process updated for ``expiration``: counter and
        histogram shares fold into the offset (the sum stays), other shares
        and emptied gauge series go."""
        now = self.clock()
        if not force and now - self._last_sweep < min(1.0, self.expiration / 4):
            return
        self._last_sweep = now
        cutoff = now - self.expiration
        with self._lock:
            for fam in self.families.values():
                monotonic = fam.mode in (COUNTER, HISTOGRAM)
                dead_series = []
                for key, s in fam.series.items():
                    stale = [k for k, sh in s.shares.items() if sh.seen < cutoff]
                    for k in stale:
                        sh = s.shares.pop(k)
                        if monotonic:
                            s.offset = _add(s.offset, sh.value)
                    if not s.shares and s.offset is None and s.seen < cutoff:
                        dead_series.append(key)
                    elif not monotonic and not s.shares and s.seen < cutoff:
                        dead_series.append(key)
                for key in dead_series:
                    del fam.series[key]
            for k in [k for k, tg in self.targets.items() if tg.seen < cutoff]:
                del self.targets[k]

    # -- scrape ----------------------------------------------------------------
    def _value(self, fam: Family, s: Series):
        shares = s.shares.values()
        if fam.mode == GAUGE:
            if not shares:
                return None
            agg = self.gauge_aggregation
            if agg == "sum":
                return sum(sh.value for sh in shares)
            if agg == "max":
                return max(sh.value for sh in shares)
            if agg == "min":
                return min(sh.value for sh in shares)
            return max(shares, key=lambda sh: sh.time).value   # last, per_process
        total = s.offset
        for sh in shares:
            total = _add(total, sh.value)
        return total

    def snapshot(self):
        """``(families, target_infos)``: families as ``(Family, [(labels,
        value)])`` (histogram values are ``(bounds, vector)``), and the
        target_info label sets of live merged targets."""
        self.sweep()
        out = []
        with self._lock:
            for name in sorted(self.families):
                fam = self.families[name]
                rows = []
                for s in fam.series.values():
                    v = self._value(fam, s)
                    if v is None:
                        continue
                    rows.append((s.labels, (s.bounds, v.copy()) if fam.mode == HISTOGRAM else v))
                if rows:
                    out.append((fam, rows))
            infos = {}
            for tg in self.targets.values():
                if tg.info is not None:
                    infos[tg.info] = True
        return out, list(infos)
