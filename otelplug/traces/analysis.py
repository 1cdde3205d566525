"""Trace analysis: tree, critical path, self/child time, latency breakdown
per operation and per service, counts, and the bad input met.

``analyse_many`` takes the spans of many traces at once (a ``group``
column says which trace each span is in) and does everything in one numpy
pass over all of them: per-call overhead, not per-span work, is what small
traces cost.  Only the critical-path walk is a Python loop, over the spans
on the paths.  ``analyse`` is the one-trace case.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .critical_path import PathWalker
from .self_time import child_time
from .tree import ANOMALY_FIELDS, Anomalies, build_tree, index_spans

STATUS_ERROR = 2   # OTLP Status.code ERROR


@dataclass
class TraceSpans:
    """Spans as columns.  ``name_id``/``service_id`` index ``names``/``services``."""
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

    def take(self, idx) -> "TraceSpans":
        return TraceSpans(self.span_id[idx], self.parent_span_id[idx], self.start[idx],
                          self.end[idx], self.name_id[idx], self.names, self.service_id[idx],
                          self.services, self.status_code[idx],
                          None if self.kind is None else self.kind[idx])

    @classmethod
    def build(cls, span_id, parent_span_id, start, end, names, services,
              status_code=None, kind=None) -> "TraceSpans":
        """From per-span values (names/services as strings): for tests and
        small callers."""
        n = len(span_id)
        name_tab, name_id = np.unique(np.asarray(names, dtype=str), return_inverse=True) \
            if n else (np.zeros(0, str), np.zeros(0, np.int64))
        svc_tab, svc_id = np.unique(np.asarray(services, dtype=str), return_inverse=True) \
            if n else (np.zeros(0, str), np.zeros(0, np.int64))
        return cls(np.asarray(span_id, np.uint64), np.asarray(parent_span_id, np.uint64),
                   np.asarray(start, np.int64), np.asarray(end, np.int64),
                   name_id.ravel().astype(np.int64), [str(x) for x in name_tab],
                   svc_id.ravel().astype(np.int64), [str(x) for x in svc_tab],
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
        sp = self.spans
        return {"span_count": self.span_count, "depth": self.max_depth,
                "error_count": self.error_count, "duration_ns": self.duration,
                "critical_path": [
                    {"span_id": format(int(sp.span_id[s]), "016x"),
                     "name": sp.names[int(sp.name_id[s])],
                     "service": sp.services[int(sp.service_id[s])],
                     "start_ns": int(a), "end_ns": int(b)}
                    for s, a, b in zip(self.path_span.tolist(), self.path_start.tolist(),
                                       self.path_end.tolist())],
                "by_operation": self.by_operation.rows(),
                "by_service": self.by_service.rows(),
                "anomalies": self.anomalies.as_dict()}


class _Table:
    """Sums per (trace, label), sorted by trace then label."""

    def __init__(self, group, label, nlabels, dur, own, crit, err):
        key = group.astype(np.int64) * max(nlabels, 1) + label
        uniq, inv = np.unique(key, return_inverse=True)
        inv = inv.ravel()
        self.group = uniq // max(nlabels, 1)
        self.label = uniq % max(nlabels, 1)
        k = len(uniq)

        def total(w):
            out = np.zeros(k, np.int64)
            np.add.at(out, inv, w)
            return out

        self.count = np.bincount(inv, minlength=k).astype(np.int64)
        self.total, self.own, self.crit = total(dur), total(own), total(crit)
        self.err = total(err.astype(np.int64))

    def breakdown(self, g: int, labels: list) -> Breakdown:
        a, b = np.searchsorted(self.group, [g, g + 1])
        return Breakdown([labels[i] for i in self.label[a:b].tolist()], self.count[a:b],
                         self.total[a:b], self.own[a:b], self.crit[a:b], self.err[a:b])


class ForestAnalysis:
    """The analysis of many traces; ``trace(g)`` gives trace ``g``'s."""

    def __init__(self, spans: TraceSpans, group: np.ndarray, ngroups: int):
        self.ngroups = ngroups
        anomalies = {f: np.zeros(ngroups, np.int64) for f in ANOMALY_FIELDS}

        def count(name, groups_hit):
            anomalies[name] += np.bincount(groups_hit, minlength=ngroups)

        span_id = np.asarray(spans.span_id, np.uint64)
        # kept spans come grouped: one contiguous range of spans per trace
        keep, invalid, dups, parent, orphan = index_spans(
            span_id, np.asarray(spans.parent_span_id, np.uint64), group)
        count("invalid_span_ids", group[invalid])
        count("duplicate_span_ids", group[dups])
        s = spans.take(keep)
        g = group[keep]
        self.spans, self.group = s, g
        self.bounds = np.searchsorted(g, np.arange(ngroups + 1))
        start = np.asarray(s.start, np.int64)
        end = np.asarray(s.end, np.int64)
        bad = end < start
        count("end_before_start", g[bad])
        end = np.where(bad, start, end)
        s.start, s.end = start, end
        pid = np.asarray(s.parent_span_id, np.uint64)
        count("orphans", g[orphan])
        tree = build_tree(parent, start, end)
        count("cycle_spans", g[tree.cyclic])
        count("cycle_links_cut", g[tree.cut])
        count("outside_parent", g[tree.outside])
        self.tree = tree
        dur = end - start
        self.child_time = child_time(tree.parent, start, end)
        self.self_time = dur - self.child_time
        self.root, missing = self._roots(tree.parent, pid, g, start, end, ngroups)
        anomalies["missing_root"] = missing.astype(np.int64)
        self.anomalies = anomalies
        # the path of each trace covers only its chosen root's tree: other
        # top-level spans (orphans) get empty windows
        root_of_span = self.root[g]
        in_root = tree.top == root_of_span
        ws = np.where(in_root, tree.win_start, 0)
        we = np.where(in_root, tree.win_end, 0)
        walker = PathWalker(tree.parent, ws, we, s.span_id)
        seg, self.path_bounds = walker.walk_all(self.root)
        self.path_span, self.path_start, self.path_end = seg[:, 0], seg[:, 1], seg[:, 2]
        self.critical_time = np.zeros(len(g), np.int64)
        np.add.at(self.critical_time, self.path_span, self.path_end - self.path_start)
        err = s.status_code == STATUS_ERROR
        self.by_operation = _Table(g, np.asarray(s.name_id, np.int64), len(s.names), dur,
                                   self.self_time, self.critical_time, err)
        self.by_service = _Table(g, np.asarray(s.service_id, np.int64), len(s.services), dur,
                                 self.self_time, self.critical_time, err)

    @staticmethod
    def _roots(parent, pid, g, start, end, ngroups):
        """Per trace: the real root (no parent id) ending last, earliest start
        on ties; without one (missing root) the top-level span that ends last."""
        root = np.full(ngroups, -1, np.int64)
        real = pid == 0
        for cand in (np.flatnonzero(real), np.flatnonzero(parent < 0)):
            cand = cand[np.lexsort((start[cand], -end[cand], g[cand]))]
            gc = g[cand]
            first = np.ones(len(cand), bool)
            first[1:] = gc[1:] != gc[:-1]
            unset = root[gc[first]] < 0
            root[gc[first][unset]] = cand[first][unset]
        has_real = np.zeros(ngroups, bool)
        has_real[g[real]] = True
        return root, ~has_real

    def trace(self, k: int) -> TraceAnalysis:
        a, b = int(self.bounds[k]), int(self.bounds[k + 1])
        pa, pb = int(self.path_bounds[k]), int(self.path_bounds[k + 1])
        parent = self.tree.parent[a:b]
        an = Anomalies(**{f: int(v[k]) for f, v in self.anomalies.items()})
        an.missing_root = bool(an.missing_root)
        return TraceAnalysis(
            spans=self.spans.take(slice(a, b)), root=int(self.root[k]) - a if self.root[k] >= 0
            else -1, parent=np.where(parent >= 0, parent - a, -1), depth=self.tree.depth[a:b],
            self_time=self.self_time[a:b], child_time=self.child_time[a:b],
            critical_time=self.critical_time[a:b], path_span=self.path_span[pa:pb] - a,
            path_start=self.path_start[pa:pb], path_end=self.path_end[pa:pb],
            by_operation=self.by_operation.breakdown(k, self.spans.names),
            by_service=self.by_service.breakdown(k, self.spans.services), anomalies=an)


def analyse_many(spans: TraceSpans, group: np.ndarray, ngroups: int | None = None) -> ForestAnalysis:
    group = np.asarray(group, np.int64)
    if ngroups is None:
        ngroups = int(group.max()) + 1 if len(group) else 0
    return ForestAnalysis(spans, group, ngroups)


def analyse(spans: TraceSpans) -> TraceAnalysis:
    return analyse_many(spans, np.zeros(len(spans), np.int64), 1).trace(0)
