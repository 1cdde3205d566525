"""The critical path of a trace: which span was doing the work that the
trace's end waited for, at every instant of the top-level span.

Definition (the one Jaeger's UI uses; see README "Trace analysis"):

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
linear in the number of spans; it runs as a Python loop over the spans *on*
the path only, with a binary search to skip the others.
"""
from __future__ import annotations

from bisect import bisect_right

import numpy as np


class PathWalker:
    """The children lists of a forest, sorted once; ``walk(root)`` then
    costs one step per span on that root's path."""

    def __init__(self, parent: np.ndarray, win_start: np.ndarray, win_end: np.ndarray,
                 span_id: np.ndarray):
        n = len(parent)
        cand = np.flatnonzero((parent >= 0) & (win_end > win_start))
        # children grouped by parent, in each group by window end, then
        # latest start first, then span id: the rightmost entry at or before
        # the cursor is the one the definition picks
        order = cand[np.lexsort((span_id[cand], -win_start[cand], win_end[cand], parent[cand]))]
        # each span's children are order[lo:hi] (CSR offsets from counts)
        hi = np.cumsum(np.bincount(parent[order], minlength=n))
        self.hi = hi.tolist()
        self.lo = (hi - np.bincount(parent[order], minlength=n)).tolist()
        self.ends = win_end[order].tolist()
        self.kids = order.tolist()
        self.starts = win_start.tolist()
        self.wends = win_end.tolist()
        self.par = parent.tolist()

    def walk(self, root: int, out: list) -> None:
        """Append the path segments ``(span, start, end)`` of ``root``'s
        tree to ``out``, latest first."""
        lo, hi, ends, kids, starts, par = (self.lo, self.hi, self.ends, self.kids, self.starts,
                                           self.par)
        cursor = {root: self.wends[root]}
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
