"""Trace assembly: hold the spans of each trace until it is complete, then
analyse it once.

A trace is complete when its root span (no parent id) has arrived and no
span of it arrived for ``quiet_gap`` seconds; a trace is closed anyway
``max_wait`` after its first span (a lost root, a stuck service), so
nothing waits unboundedly.  Memory is bounded by ``max_spans`` buffered
spans: past it, the oldest open traces are closed early (reason
``memory``) -- analysed with what they have, never dropped silently.

Closed traces stay for ``late_window`` seconds (within ``max_retained_spans``)
so that a late span is re-attached to its trace: the trace re-opens, waits
for a new quiet gap and is analysed again (``revision`` + 1).  A late span
whose trace has already been forgotten starts a fragment, flagged by its
missing root.

Spans are held as rows of one packed numpy record array per batch (42
bytes a span, ``SPAN_DTYPE``); a trace keeps a view of its rows in each
batch it came in, never one Python object per span.  The Python work per
batch is one step per distinct trace, and the traces closed by one ``poll``
are analysed together in one pass (``analyse_many``).
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np

from .analysis import ForestAnalysis, TraceAnalysis, TraceSpans, analyse_many

SPAN_DTYPE = np.dtype([("span_id", "<u8"), ("parent_span_id", "<u8"), ("start", "<i8"),
                       ("end", "<i8"), ("name_id", "<i4"), ("service_id", "<i4"),
                       ("status_code", "u1"), ("kind", "u1")])
_COLS = SPAN_DTYPE.names


@dataclass
class AssemblyConfig:
    quiet_gap: float = 5.0
    max_wait: float = 60.0
    max_spans: int = 1_000_000
    late_window: float = 30.0
    max_retained_spans: int = 200_000


@dataclass
class Batch(TraceSpans):
    """Spans of one batch as columns, with each span's trace id;
    ``names``/``services`` are local to the batch."""
    trace_id: np.ndarray | None = None      # (n, 16) uint8


class _Open:
    __slots__ = ("pieces", "count", "first", "last", "root_seen", "revision", "closed_at",
                 "late")

    def __init__(self, now):
        self.pieces: list = []
        self.count = 0
        self.first = self.last = now
        self.root_seen = False
        self.revision = 0
        self.closed_at = 0.0
        self.late = 0


@dataclass
class Completed:
    trace_id: bytes
    forest: ForestAnalysis   # the analysis of every trace closed with this one
    index: int               # this trace's group in ``forest``
    reason: str              # quiet | max_wait | memory | shutdown
    revision: int            # 0 first analysis, +1 per re-attachment of late spans
    late_spans: int

    @property
    def analysis(self) -> TraceAnalysis:
        return self.forest.trace(self.index)

    @property
    def spans(self) -> TraceSpans:
        return self.analysis.spans


class Interner:
    """Strings to small ints, shared by every trace of the assembler."""

    def __init__(self):
        self.ids: dict[str, int] = {}
        self.values: list[str] = []

    def map(self, local: list) -> np.ndarray:
        out = np.empty(len(local), np.int32)
        for i, v in enumerate(local):
            j = self.ids.get(v)
            if j is None:
                j = self.ids[v] = len(self.values)
                self.values.append(v)
            out[i] = j
        return out


class TraceAssembler:
    def __init__(self, config: AssemblyConfig | None = None):
        self.config = config or AssemblyConfig()
        self._open: OrderedDict[bytes, _Open] = OrderedDict()     # by first arrival
        self._closed: OrderedDict[bytes, _Open] = OrderedDict()   # by close time
        self.names, self.services = Interner(), Interner()
        self.buffered = 0          # spans in open traces
        self.retained = 0          # spans kept in closed traces for late arrivals
        self.counts = {"spans": 0, "traces": 0, "late_spans": 0,
                       "closed_quiet": 0, "closed_max_wait": 0, "closed_memory": 0,
                       "closed_shutdown": 0}

    # -- intake -------------------------------------------------------------------
    def add(self, batch: Batch, now: float) -> list[Completed]:
        """Buffer a batch; returns traces closed early to stay within memory."""
        n = len(batch.span_id)
        if not n:
            return []
        self.counts["spans"] += n
        name_map, svc_map = self.names.map(batch.names), self.services.map(batch.services)
        tid = np.ascontiguousarray(batch.trace_id)
        halves = tid.view(">u8")            # (n, 2): sorting two integers beats 16-byte voids
        order = np.lexsort((halves[:, 1], halves[:, 0]))
        sorted_keys = tid.view("V16").ravel()[order]
        cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
        starts = np.concatenate([[0], cuts])
        bounds = np.concatenate([starts, [n]]).tolist()
        rows = np.empty(n, SPAN_DTYPE)
        for c in _COLS:
            rows[c] = np.asarray(getattr(batch, c))[order]
        rows["name_id"] = name_map[rows["name_id"]]
        rows["service_id"] = svc_map[rows["service_id"]]
        has_root = np.maximum.reduceat(rows["parent_span_id"] == 0, starts).tolist()
        # pieces are kept as opaque 42-byte rows: concatenating those is a
        # memcpy, concatenating the structured dtype promotes every field
        raw = rows.view(f"V{SPAN_DTYPE.itemsize}")
        # the trace ids as bytes keys, cut from one buffer (one call, not one per trace)
        blob = sorted_keys[starts].tobytes()
        opened, closed = self._open, self._closed
        for i, (a, b, root_here) in enumerate(zip(bounds[:-1], bounds[1:], has_root)):
            key = blob[16 * i:16 * i + 16]
            t = opened.get(key)
            if t is None:
                t = closed.pop(key, None)
                if t is not None:             # a late span: re-open the trace
                    self.retained -= t.count
                    t.revision += 1
                    t.late += b - a
                    t.first = now
                    self.counts["late_spans"] += b - a
                else:
                    t = _Open(now)
                    self.counts["traces"] += 1
                opened[key] = t
            t.pieces.append(raw[a:b])
            t.count += b - a
            t.last = now
            if root_here:
                t.root_seen = True
        self.buffered += n
        over, total = [], self.buffered
        for key, t in self._open.items():
            if total <= self.config.max_spans:
                break
            over.append((key, "memory"))
            total -= t.count
        return self._close(over, now)

    # -- completion ---------------------------------------------------------------
    def poll(self, now: float) -> list[Completed]:
        """Close and analyse every trace that is complete by ``now``."""
        cfg = self.config
        due = [(k, "quiet" if t.root_seen and now - t.last >= cfg.quiet_gap else "max_wait")
               for k, t in self._open.items()
               if (t.root_seen and now - t.last >= cfg.quiet_gap) or now - t.first >= cfg.max_wait]
        out = self._close(due, now)
        self._forget(now)
        return out

    def flush(self, now: float) -> list[Completed]:
        """Close everything (shutdown)."""
        return self._close([(k, "shutdown") for k in self._open], now)

    def _close(self, due: list, now: float) -> list[Completed]:
        if not due:
            return []
        closing, pieces, sizes = [], [], []
        opened, closed = self._open, self._closed
        for key, reason in due:
            t = opened.pop(key)
            t.closed_at = now
            closed[key] = t
            closing.append(t)
            pieces += t.pieces
            sizes.append(t.count)
        spans_closed = sum(sizes)
        self.buffered -= spans_closed
        self.retained += spans_closed
        for reason, k in Counter(r for _, r in due).items():
            self.counts["closed_" + reason] += k
        # every piece of every closing trace in one copy
        rows = np.concatenate(pieces).view(SPAN_DTYPE)
        group = np.repeat(np.arange(len(closing)), sizes)
        spans = TraceSpans(*(np.ascontiguousarray(rows[c]) for c in _COLS[:4]),
                           np.ascontiguousarray(rows["name_id"]), self.names.values,
                           np.ascontiguousarray(rows["service_id"]), self.services.values,
                           np.ascontiguousarray(rows["status_code"]),
                           np.ascontiguousarray(rows["kind"]))
        forest = analyse_many(spans, group, len(closing))
        return [Completed(key, forest, k, reason, t.revision, t.late)
                for k, ((key, reason), t) in enumerate(zip(due, closing))]

    def _forget(self, now: float) -> None:
        cfg = self.config
        while self._closed:
            key, t = next(iter(self._closed.items()))
            if now - t.closed_at < cfg.late_window and self.retained <= cfg.max_retained_spans:
                break
            del self._closed[key]
            self.retained -= t.count

    def open_traces(self) -> int:
        return len(self._open)
