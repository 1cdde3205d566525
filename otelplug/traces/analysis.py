"""One trace's analysis: tree, critical path, self/child time, latency
breakdown per operation and per service, counts, and the bad input found.

Input is columns (``TraceSpans``), never one object per span; every step is
numpy except the critical-path walk over the spans on the path.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .critical_path import critical_path
from .self_time import child_time
from .tree import Anomalies, build_tree, keep_first, parent_index

STATUS_ERROR = 2   # OTLP Status.code ERROR


@dataclass
class TraceSpans:
    """The spans of one trace as columns.  ``name_id``/``service_id`` index
    ``names``/``services``."""
    span_id: np.ndarray
    parent_span_id: np.ndarray
    start: np.ndarray
    end: np.ndarray
    name_id: np.ndarray
    names: list
    service_id: np.ndarray
    services: list
    status_code: np.ndarray
    kind: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.span_id)

    @classmethod
    def build(cls, span_id, parent_span_id, start, end, names, services,
              status_code=None, kind=None) -> "TraceSpans":
        """From per-span values (names/services as strings): for tests and
        small callers."""
        n = len(span_id)
        name_tab, name_id = np.unique(np.asarray(names, dtype=object).astype(str),
                                      return_inverse=True) if n else ([], np.zeros(0))
        svc_tab, svc_id = np.unique(np.asarray(services, dtype=object).astype(str),
                                    return_inverse=True) if n else ([], np.zeros(0))
        return cls(np.asarray(span_id, np.uint64), np.asarray(parent_span_id, np.uint64),
                   np.asarray(start, np.int64), np.asarray(end, np.int64),
                   np.asarray(name_id, np.int64), [str(x) for x in name_tab],
                   np.asarray(svc_id, np.int64), [str(x) for x in svc_tab],
                   np.zeros(n, np.uint8) if status_code is None
                   else np.asarray(status_code, np.uint8),
                   None if kind is None else np.asarray(kind, np.uint8))


@dataclass
class Breakdown:
    """Latency by one key (operation or service), nanoseconds."""
    labels: list
    count: np.ndarray
    total: np.ndarray       # sum of span durations
    self_time: np.ndarray   # sum of self time
    critical: np.ndarray    # time on the critical path
    errors: np.ndarray

    def rows(self) -> list[dict]:
        order = np.lexsort((-self.self_time, -self.critical))
        return [{"label": self.labels[i], "count": int(self.count[i]),
                 "total_ns": int(self.total[i]), "self_ns": int(self.self_time[i]),
                 "critical_ns": int(self.critical[i]), "errors": int(self.errors[i])}
                for i in order.tolist() if self.count[i]]


@dataclass
class TraceAnalysis:
    spans: TraceSpans          # the analysed spans (duplicates and id 0 dropped)
    root: int                  # index of the top-level span the path covers (-1: none)
    parent: np.ndarray
    depth: np.ndarray
    self_time: np.ndarray
    child_time: np.ndarray
    critical_time: np.ndarray  # per span: its time on the critical path
    path_span: np.ndarray      # critical path segments, latest first
    path_start: np.ndarray
    path_end: np.ndarray
    by_operation: Breakdown
    by_service: Breakdown
    anomalies: Anomalies = field(default_factory=Anomalies)

    @property
    def span_count(self) -> int:
        return len(self.spans)

    @property
    def max_depth(self) -> int:
        """Levels of the tree (a lone root: 1)."""
        return int(self.depth.max()) + 1 if len(self.depth) else 0

    @property
    def error_count(self) -> int:
        return int(np.count_nonzero(self.spans.status_code == STATUS_ERROR))

    @property
    def duration(self) -> int:
        if self.root < 0:
            return 0
        return int(self.spans.end[self.root] - self.spans.start[self.root])

    def summary(self) -> dict:
        return {"span_count": self.span_count, "depth": self.max_depth,
                "error_count": self.error_count, "duration_ns": self.duration,
                "critical_path": [
                    {"span_id": format(int(self.spans.span_id[s]), "016x"),
                     "name": self.spans.names[int(self.spans.name_id[s])],
                     "service": self.spans.services[int(self.spans.service_id[s])],
                     "start_ns": int(a), "end_ns": int(b)}
                    for s, a, b in zip(self.path_span.tolist(), self.path_start.tolist(),
                                       self.path_end.tolist())],
                "by_operation": self.by_operation.rows(),
                "by_service": self.by_service.rows(),
                "anomalies": self.anomalies.as_dict()}


def _breakdown(key: np.ndarray, labels: list, dur, self_t, crit, err) -> Breakdown:
    k = len(labels)

    def total(w):
        out = np.zeros(k, np.int64)
        np.add.at(out, key, w)
        return out

    return Breakdown(list(labels), np.bincount(key, minlength=k).astype(np.int64),
                     total(dur), total(self_t), total(crit), total(err.astype(np.int64)))


def _pick_root(parent: np.ndarray, parent_span_id: np.ndarray, end: np.ndarray,
               start: np.ndarray, anomalies: Anomalies) -> int:
    """The real root (no parent id) ending last; without one (missing root)
    the top-level span (an orphan) that ends last, earliest start on ties."""
    real = np.flatnonzero(parent_span_id == 0)
    if not len(real):
        anomalies.missing_root = True
        real = np.flatnonzero(parent < 0)
        if not len(real):
            return -1
    best = real[np.lexsort((start[real], -end[real]))]
    return int(best[0])


def analyse(spans: TraceSpans) -> TraceAnalysis:
    anomalies = Anomalies()
    keep = keep_first(np.asarray(spans.span_id, np.uint64), anomalies)
    s = TraceSpans(*(None if col is None else (col[keep] if isinstance(col, np.ndarray) else col)
                     for col in (spans.span_id, spans.parent_span_id, spans.start, spans.end,
                                 spans.name_id, spans.names, spans.service_id, spans.services,
                                 spans.status_code, spans.kind)))
    start = np.asarray(s.start, np.int64)
    end = np.asarray(s.end, np.int64)
    bad = end < start
    anomalies.end_before_start = int(np.count_nonzero(bad))
    end = np.where(bad, start, end)
    s.start, s.end = start, end
    parent = parent_index(s.span_id, np.asarray(s.parent_span_id, np.uint64), anomalies)
    tree = build_tree(parent, start, end, anomalies)
    dur = end - start
    kids = child_time(tree.parent, start, end)
    own = dur - kids
    root = _pick_root(tree.parent, s.parent_span_id, end, start, anomalies)
    crit = np.zeros(len(s), np.int64)
    if root >= 0:
        # only the chosen root's tree: other top-level spans (orphans) are
        # not on its path; their windows are their own
        in_root = tree.top == root
        ws = np.where(in_root, tree.win_start, 0)
        we = np.where(in_root, tree.win_end, 0)
        path = critical_path(tree.parent, ws, we, root, s.span_id)
        np.add.at(crit, path[0], path[2] - path[1])
    else:
        path = (np.zeros(0, np.int64),) * 3
    err = s.status_code == STATUS_ERROR
    name_id = np.asarray(s.name_id, np.int64)
    svc_id = np.asarray(s.service_id, np.int64)
    return TraceAnalysis(
        spans=s, root=root, parent=tree.parent, depth=tree.depth, self_time=own,
        child_time=kids, critical_time=crit, path_span=path[0], path_start=path[1],
        path_end=path[2],
        by_operation=_breakdown(name_id, s.names, dur, own, crit, err),
        by_service=_breakdown(svc_id, s.services, dur, own, crit, err),
        anomalies=anomalies)
