"""Rule evaluation: which alert instances are active now, and their value.

A rule is one of six kinds; each evaluator is fed either closed windows
(``observe_windows``) or batches of items (``observe_items``) and answers
``active(now)`` with ``{labels: value}`` for the instances whose condition
holds.  The alert engine (alerts.py) turns that into pending / firing /
resolved with ``for`` and ``keep_firing_for``.

- threshold: a window metric of a group compared with a value;
- count: matching items within the last ``within`` compared with a value;
- sequence: A followed by B (or A *not* followed by B) within ``within``,
  keyed by an attribute: each occurrence is an event for that key;
- absence: no matching item for ``within``;
- anomaly: a window metric's anomaly score (anomaly.py) at or above a level;
- burn_rate: the error ratio of matching items against an SLO objective
  over pairs of windows (the SRE workbook's multiwindow, multi-burn-rate
  alert: 1h and 5m at 14.4x, 6h and 30m at 6x).

Rule configs are duck-typed (the sidecar's config dataclasses, times in
seconds); nothing here imports the sidecar.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .windows import WindowResult

NS = 1_000_000_000
OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
       "==": operator.eq, "!=": operator.ne}
WINDOW_METRICS = ("count", "errors", "error_rate", "throughput", "sum", "avg",
                  "p50", "p95", "p99", "max")


def window_metric(r: WindowResult, metric: str) -> np.ndarray:
    if metric in ("p50", "p95", "p99"):
        return r.quantiles[:, ("p50", "p95", "p99").index(metric)]
    if metric in ("error_rate", "throughput", "avg"):
        return getattr(r, metric)
    return getattr(r, metric)


def labels_key(d: dict) -> tuple:
    return tuple(sorted((str(k), str(v)) for k, v in d.items()))


@dataclass
class ItemBatch:
    """Items (spans or log records) of one batch, as columns.

    ``attribute(i, key)`` reads one attribute of item i (the item's own,
    then its resource's); it is only called for items that passed the
    column filters, so a batch is not decoded item by item."""
    signal: str
    time: np.ndarray            # int64 ns
    name_id: np.ndarray         # index into names
    names: list
    error: np.ndarray           # bool
    attribute: Callable[[int, str], object]

    def __len__(self) -> int:
        return len(self.time)


class Matcher:
    """signal, name(s), status (error | ok, for spans: error = status
    ERROR; for logs: severity ERROR or above), attributes (equal values)."""

    def __init__(self, cfg):
        self.signal = getattr(cfg, "signal", "") or ""
        names = getattr(cfg, "name", None) or []
        self.names = set([names] if isinstance(names, str) else names)
        self.status = getattr(cfg, "status", "") or ""
        self.attributes = dict(getattr(cfg, "attributes", None) or {})

    def mask(self, b: ItemBatch) -> np.ndarray:
        n = len(b)
        if self.signal and self.signal != b.signal:
            return np.zeros(n, bool)
        m = np.ones(n, bool)
        if self.names:
            ok = np.array([nm in self.names for nm in b.names], dtype=bool)
            m &= ok[b.name_id] if len(ok) else np.zeros(n, bool)
        if self.status == "error":
            m &= b.error
        elif self.status == "ok":
            m &= ~b.error
        if self.attributes and m.any():
            for i in np.flatnonzero(m).tolist():
                for k, v in self.attributes.items():
                    if str(b.attribute(i, k)) != str(v):
                        m[i] = False
                        break
        return m


class _Seen:
    """What a rule has matched so far: a rule that matches nothing for a
    long time is shown in the alert status, not treated as an error."""
    matched = 0
    last_match_ns: int | None = None

    def _note(self, n: int, now_ns: int) -> None:
        if n:
            self.matched += int(n)
            self.last_match_ns = now_ns

    def status(self) -> dict:
        return {"matched": self.matched,
                "last_match": self.last_match_ns / NS if self.last_match_ns else None}


class _TimeBuckets:
    """Counts per ``resolution`` seconds of event time, for sliding sums."""

    def __init__(self, resolution_s: float, keep_s: float, columns: int = 1):
        self.res = max(int(resolution_s * NS), 1)
        self.keep = int(keep_s * NS)
        self.columns = columns
        self.buckets: dict[int, np.ndarray] = {}

    def add(self, t: np.ndarray, values: np.ndarray, now_ns: int) -> None:
        if not len(t):
            return
        t = np.minimum(t, now_ns)          # a fast producer clock counts as now
        b = t // self.res
        u, inv = np.unique(b, return_inverse=True)
        sums = np.zeros((len(u), self.columns))
        np.add.at(sums, inv.reshape(-1), values.reshape(len(t), -1))
        oldest = (now_ns - self.keep) // self.res
        for k, row in zip(u.tolist(), sums):
            if k < oldest:
                continue
            cur = self.buckets.get(k)
            self.buckets[k] = row if cur is None else cur + row

    def total(self, now_ns: int, within_ns: int) -> np.ndarray:
        lo = (now_ns - within_ns) // self.res
        oldest = (now_ns - self.keep) // self.res
        for k in [k for k in self.buckets if k < oldest]:
            del self.buckets[k]
        out = np.zeros(self.columns)
        for k, v in self.buckets.items():
            if k > lo:
                out += v
        return out


class ThresholdEval(_Seen):
    needs_windows = True

    def __init__(self, cfg):
        self.window, self.metric = cfg.window, cfg.metric
        self.op, self.value = OPS[cfg.op], float(cfg.value)
        self.where = {str(k): str(v) for k, v in (cfg.where or {}).items()}
        self.current: dict[tuple, float] = {}

    def _rows(self, results, group_attrs):
        for r in results:
            if r.window != self.window:
                continue
            vals = window_metric(r, self.metric)
            for i in range(len(r)):
                attrs = group_attrs(int(r.group[i])) or {}
                if all(str(attrs.get(k)) == v for k, v in self.where.items()):
                    yield r, i, attrs, float(vals[i])

    def observe_windows(self, results, group_attrs, scores=None) -> None:
        if not any(r.window == self.window for r in results):
            return
        rows = list(self._rows(results, group_attrs))
        self._note(len(rows), int(max(r.end.max() for r in results if len(r))))
        self.current = {labels_key(a): v for _r, _i, a, v in rows if self.op(v, self.value)}

    def active(self, now_ns: int) -> dict:
        return self.current


class AnomalyEval(ThresholdEval):
    """Active for groups whose window metric scored at or above ``score``."""

    def __init__(self, cfg):
        self.window, self.metric, self.level = cfg.window, cfg.metric, float(cfg.score)
        self.where = {str(k): str(v) for k, v in (cfg.where or {}).items()}
        self.current = {}

    def observe_windows(self, results, group_attrs, scores=None) -> None:
        if not any(r.window == self.window for r in results):
            return
        cur = {}
        rows = list(self._rows(results, group_attrs))
        self._note(len(rows), int(max(r.end.max() for r in results if len(r))))
        for r, i, attrs, v in rows:
            s = (scores or {}).get((self.window, self.metric, labels_key(attrs)))
            if s is not None and s.state != "learning" and s.score >= self.level:
                cur[labels_key(attrs)] = round(s.score, 3)
        self.current = cur


class CountEval(_Seen):
    needs_windows = False

    def __init__(self, cfg):
        self.match = Matcher(cfg.match)
        self.within = int(cfg.within * NS)
        self.op, self.value = OPS[cfg.op], float(cfg.value)
        self.buckets = _TimeBuckets(min(max(cfg.within / 60, 0.1), 1.0), cfg.within + 1)

    def observe_items(self, b: ItemBatch, now_ns: int) -> None:
        m = self.match.mask(b)
        self._note(int(m.sum()), now_ns)
        if m.any():
            self.buckets.add(b.time[m], np.ones(int(m.sum())), now_ns)

    def active(self, now_ns: int) -> dict:
        n = float(self.buckets.total(now_ns, self.within)[0])
        return {(): n} if self.op(n, self.value) else {}


class SequenceEval(_Seen):
    """A then B by ``key``: ``followed`` true reports each A followed by B
    within ``within``; false reports each A with no B ``within`` after it
    (once its time is up).  Open A's are bounded by ``max_open``; beyond
    that the oldest are dropped and counted."""
    needs_windows = False

    def __init__(self, cfg, max_open: int = 100_000):
        self.first, self.then = Matcher(cfg.first), Matcher(cfg.then)
        self.key, self.within = cfg.key, int(cfg.within * NS)
        self.followed = bool(cfg.followed)
        self.open: dict[str, int] = {}
        self.events: dict[tuple, float] = {}
        self.max_open, self.dropped = max_open, 0

    def observe_items(self, b: ItemBatch, now_ns: int) -> None:
        ma, mb = self.first.mask(b), self.then.mask(b)
        idx = np.flatnonzero(ma | mb)
        self._note(len(idx), now_ns)
        if not len(idx):
            return
        for i in idx[np.argsort(b.time[idx], kind="stable")].tolist():
            k = b.attribute(i, self.key)
            if k is None:
                continue
            k, t = str(k), int(b.time[i])
            if mb[i] and k in self.open:
                started = self.open.pop(k)
                if self.followed and t - started <= self.within:
                    self.events[((self.key, k),)] = (t - started) / NS
            if ma[i] and not mb[i] and k not in self.open:
                self.open[k] = t
                if len(self.open) > self.max_open:
                    self.open.pop(next(iter(self.open)))
                    self.dropped += 1

    def status(self) -> dict:
        return {**super().status(), "open": len(self.open), "dropped_open": self.dropped}

    def active(self, now_ns: int) -> dict:
        if not self.followed:
            for k in [k for k, t in self.open.items() if now_ns - t > self.within]:
                self.events[((self.key, k),)] = (now_ns - self.open.pop(k)) / NS
        out, self.events = self.events, {}
        return out


class AbsenceEval(_Seen):
    needs_windows = False

    def __init__(self, cfg, now_ns: int):
        self.match = Matcher(cfg.match)
        self.within = int(cfg.within * NS)
        self.last = now_ns               # counting from when the rule was loaded

    def observe_items(self, b: ItemBatch, now_ns: int) -> None:
        m = self.match.mask(b)
        self._note(int(m.sum()), now_ns)
        if m.any():
            self.last = max(self.last, min(int(b.time[m].max()), now_ns))

    def active(self, now_ns: int) -> dict:
        idle = now_ns - self.last
        return {(): round(idle / NS, 3)} if idle >= self.within else {}


DEFAULT_BURN_WINDOWS = ((3600.0, 300.0, 14.4), (21600.0, 1800.0, 6.0))


class BurnRateEval(_Seen):
    """Burn rate = error ratio / (1 - objective).  Active when, for some
    pair, both the long and the short window burn faster than its factor
    (the short window makes the alert stop soon after the errors do)."""
    needs_windows = False

    def __init__(self, cfg):
        self.match = Matcher(cfg.match)
        self.budget = 1.0 - float(cfg.objective)
        self.pairs = [(float(w.long), float(w.short), float(w.factor)) for w in cfg.windows] \
            or list(DEFAULT_BURN_WINDOWS)
        longest = max(p[0] for p in self.pairs)
        self.buckets = _TimeBuckets(max(min(p[1] for p in self.pairs) / 30, 0.1), longest + 60, 2)

    def observe_items(self, b: ItemBatch, now_ns: int) -> None:
        m = self.match.mask(b)
        self._note(int(m.sum()), now_ns)
        if m.any():
            vals = np.stack([np.ones(int(m.sum())), b.error[m].astype(float)], axis=1)
            self.buckets.add(b.time[m], vals, now_ns)

    def burn(self, now_ns: int, window_s: float) -> float:
        total, errors = self.buckets.total(now_ns, int(window_s * NS))
        return (errors / total) / self.budget if total > 0 else 0.0

    def active(self, now_ns: int) -> dict:
        for long_s, short_s, factor in self.pairs:
            bl = self.burn(now_ns, long_s)
            if bl > factor and self.burn(now_ns, short_s) > factor:
                return {(("slo.window", f"{int(long_s)}s/{int(short_s)}s"),): round(bl, 3)}
        return {}


def evaluator(kind: str, cfg, now_ns: int):
    return {"threshold": lambda: ThresholdEval(cfg), "anomaly": lambda: AnomalyEval(cfg),
            "count": lambda: CountEval(cfg), "sequence": lambda: SequenceEval(cfg),
            "absence": lambda: AbsenceEval(cfg, now_ns), "burn_rate": lambda: BurnRateEval(cfg)}[kind]()
