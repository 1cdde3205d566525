"""The critical path of a trace: which span was doing the work that the
trace's end waited for, at every instant of the top-level span.

Definition (the one Jaeger's UI uses):

* every span is clipped to its window, the intersection of its interval
  with all its ancestors' (``Tree.win_start/win_end``); time a child spends
  outside its parent (an async child outliving the parent, or clock skew
  between hosts) is not on the parent's critical path.  Children with an
  empty window are left out.
* start at the end of the top-level span with a cursor ``t``.  Among the
  span's children not yet visited, take the one whose window ends last at
  or before ``t`` (ties: the one starting earliest, then the highest span
  id, so the path does not depend on the order spans arrived in).  The stretch from that
  child's end to ``t`` is the span's own time on the path; descend into the
  child with ``t`` = its end.  When a span has no such child, the stretch
  from its start to ``t`` is its own, and its parent continues with ``t``
  = that span's start.

The path tiles the top-level span's interval exactly.  Each child is looked
at once and the cursor only moves backwards, so after one sort the walk is
linear in the number of spans; it runs over the spans *on* the path only,
with a binary search to skip the others: in C (cython_ext/trace_walk.pyx)
when the extension is built, else as the Python loop here (its reference).
"""
from __future__ import annotations

from bisect import bisect_right

import numpy as np

from otelplug import implementation


def _native():
    """The C walk (cython_ext/trace_walk.pyx), unless the one implementation
    selector (otelplug.implementation) chose the pure-Python reference."""
    if not implementation.use_compiled():
        return None
    from otelplug._ext import trace_walk
    return trace_walk.walk_all


class PathWalker:
    """The children lists of a forest, sorted once; ``walk_all(roots)``
    then costs one step per span on each root's path."""

    def __init__(self, parent: np.ndarray, win_start: np.ndarray, win_end: np.ndarray,
                 span_id: np.ndarray, native=True):
        n = len(parent)
        cand = np.flatnonzero((parent >= 0) & (win_end > win_start))
        # children grouped by parent, in each group by window end, then
        # latest start first, then span id: the rightmost entry at or before
        # the cursor is the one the definition picks
        order = cand[np.lexsort((span_id[cand], -win_start[cand], win_end[cand], parent[cand]))]
        # each span's children are order[lo:hi] (CSR offsets from counts)
        counts = np.bincount(parent[order], minlength=n)
        self.hi = np.cumsum(counts).astype(np.int64)
        self.lo = self.hi - counts
        self.kids = order.astype(np.int64)
        self.ends = np.ascontiguousarray(win_end[order], np.int64)
        self.starts = np.ascontiguousarray(win_start, np.int64)
        self.wends = np.ascontiguousarray(win_end, np.int64)
        self.parent = np.ascontiguousarray(parent, np.int64)
        self._native = _native() if native else None

    def walk_all(self, roots: np.ndarray):
        """(segments as (m, 3) int64 rows of span, start, end, latest first
        per root; offsets of each root's segments, plus the total)."""
        roots = np.ascontiguousarray(roots, np.int64)
        if self._native is not None:
            return self._native(self.lo, self.hi.copy(), self.kids, self.ends, self.starts,
                                self.wends, self.parent, roots)
        segs: list = []
        bounds = [0]
        self._lists = (self.lo.tolist(), self.hi.tolist(), self.ends.tolist(),
                       self.kids.tolist(), self.starts.tolist(), self.parent.tolist())
        for r in roots.tolist():
            if r >= 0:
                self.walk(r, segs)
            bounds.append(len(segs))
        return np.array(segs, np.int64).reshape(-1, 3), np.array(bounds, np.int64)

    def walk(self, root: int, out: list) -> None:
        """Append the path segments ``(span, start, end)`` of ``root``'s
        tree to ``out``, latest first."""
        lo, hi, ends, kids, starts, par = self._lists
        cursor = {root: int(self.wends[root])}
        append = out.append
        s = root
        while True:
            t = cursor[s]
            # the unvisited children of s are kids[lo[s]:hi[s]]
            j = bisect_right(ends, t, lo[s], hi[s]) - 1
            if j >= lo[s]:
                c = kids[j]
                hi[s] = j          # c and everything ending later: visited
                ce = ends[j]
                if t > ce:
                    append((s, ce, t))
                cursor[s] = starts[c]
                cursor[c] = ce
                s = c
            else:
                if t > starts[s]:
                    append((s, starts[s], t))
                if s == root:
                    return
                s = par[s]
