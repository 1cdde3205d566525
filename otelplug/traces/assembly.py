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

Spans are held as numpy columns per batch piece (about 50 bytes a span,
see ``SPAN_BYTES``), never one Python object per span; the Python work per
batch is one step per distinct trace.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .analysis import TraceAnalysis, TraceSpans, analyse

# per buffered span: span id, parent id, start, end (8 bytes each), name and
# service ids (4 each), status and kind (1 each), rounded up for the
# per-piece array headers (bench/traces.py measures the real figure)
SPAN_BYTES = 48
_COLS = ("span_id", "parent_span_id", "start", "end", "name_id", "service_id",
         "status_code", "kind")


@dataclass
class AssemblyConfig:
    quiet_gap: float = 5.0
    max_wait: float = 60.0
    max_spans: int = 1_000_000
    late_window: float = 30.0
    max_retained_spans: int = 200_000


@dataclass
class Batch:
    """Spans of one batch as columns; ``name_id``/``service_id`` index
    ``names``/``services`` (local to the batch)."""
    trace_id: np.ndarray      # (n, 16) uint8
    span_id: np.ndarray
    parent_span_id: np.ndarray
    start: np.ndarray
    end: np.ndarray
    name_id: np.ndarray
    names: list
    service_id: np.ndarray
    services: list
    status_code: np.ndarray
    kind: np.ndarray


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
    spans: TraceSpans
    analysis: TraceAnalysis
    reason: str              # quiet | max_wait | memory | shutdown
    revision: int            # 0 first analysis, +1 per re-attachment of late spans
    late_spans: int


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
        keys = np.ascontiguousarray(batch.trace_id).view("V16").ravel()
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
        bounds = np.concatenate([[0], cuts, [n]]).tolist()
        cols = {c: np.asarray(getattr(batch, c))[order] for c in _COLS}
        cols["name_id"] = name_map[cols["name_id"]]
        cols["service_id"] = svc_map[cols["service_id"]]
        is_root = cols["parent_span_id"] == 0
        for a, b in zip(bounds[:-1], bounds[1:]):
            key = sorted_keys[a].tobytes()
            t = self._open.get(key)
            if t is None:
                t = self._closed.pop(key, None)
                if t is not None:             # a late span: re-open the trace
                    self.retained -= t.count
                    t.revision += 1
                    t.late += b - a
                    t.first = now
                    self.counts["late_spans"] += b - a
                else:
                    t = _Open(now)
                    self.counts["traces"] += 1
                self._open[key] = t
            t.pieces.append({c: v[a:b] for c, v in cols.items()})
            t.count += b - a
            t.last = now
            t.root_seen = t.root_seen or bool(is_root[a:b].any())
            self.buffered += b - a
        out = []
        while self.buffered > self.config.max_spans and self._open:
            out.append(self._close(next(iter(self._open)), "memory", now))
        return out

    # -- completion ---------------------------------------------------------------
    def poll(self, now: float) -> list[Completed]:
        """Close and analyse every trace that is complete by ``now``."""
        cfg = self.config
        due = [(k, "quiet" if t.root_seen and now - t.last >= cfg.quiet_gap else "max_wait")
               for k, t in self._open.items()
               if (t.root_seen and now - t.last >= cfg.quiet_gap) or now - t.first >= cfg.max_wait]
        out = [self._close(k, reason, now) for k, reason in due]
        self._forget(now)
        return out

    def flush(self, now: float) -> list[Completed]:
        """Close everything (shutdown)."""
        return [self._close(k, "shutdown", now) for k in list(self._open)]

    def _close(self, key: bytes, reason: str, now: float) -> Completed:
        t = self._open.pop(key)
        self.buffered -= t.count
        self.counts["closed_" + reason] += 1
        spans = self._columns(t)
        done = Completed(key, spans, analyse(spans), reason, t.revision, t.late)
        t.closed_at = now
        self._closed[key] = t
        self.retained += t.count
        return done

    def _forget(self, now: float) -> None:
        cfg = self.config
        while self._closed:
            key, t = next(iter(self._closed.items()))
            if now - t.closed_at < cfg.late_window and self.retained <= cfg.max_retained_spans:
                break
            del self._closed[key]
            self.retained -= t.count

    def _columns(self, t: _Open) -> TraceSpans:
        if len(t.pieces) > 1:          # merge pieces once, so later closes are cheap
            t.pieces = [{c: np.concatenate([p[c] for p in t.pieces]) for c in _COLS}]
        p = t.pieces[0]
        # label tables local to the trace: the analysis groups by them, and
        # its cost must not grow with every name the assembler has seen
        names, name_id = np.unique(p["name_id"], return_inverse=True)
        svcs, svc_id = np.unique(p["service_id"], return_inverse=True)
        return TraceSpans(p["span_id"], p["parent_span_id"], p["start"], p["end"],
                          name_id.ravel(), [self.names.values[i] for i in names.tolist()],
                          svc_id.ravel(), [self.services.values[i] for i in svcs.tolist()],
                          p["status_code"], p["kind"])

    def open_traces(self) -> int:
        return len(self._open)
