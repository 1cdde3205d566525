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


def critical_path(parent: np.ndarray, win_start: np.ndarray, win_end: np.ndarray,
                  root: int, span_id: np.ndarray):
    """Segments ``(span_index, start, end)`` as three numpy arrays, ordered
    from the end of ``root`` backwards."""
    n = len(parent)
    cand = np.flatnonzero((parent >= 0) & (win_end > win_start))
    # children grouped by parent, in each group by window end, then by
    # latest start first so a bisect to the right picks the earliest start
    order = cand[np.lexsort((span_id[cand], -win_start[cand], win_end[cand], parent[cand]))]
    grp = parent[order]
    lo = np.searchsorted(grp, np.arange(n), side="left").tolist()
    hi = np.searchsorted(grp, np.arange(n), side="right").tolist()
    ends = win_end[order].tolist()
    kids = order.tolist()
    starts = win_start.tolist()
    wends = win_end.tolist()
    par = parent.tolist()
    seg_span, seg_start, seg_end = [], [], []
    cursor = {root: wends[root]}
    s = root
    while s >= 0:
        t = cursor[s]
        # the unvisited children of s are kids[lo[s]:hi[s]]
        j = bisect_right(ends, t, lo[s], hi[s]) - 1
        if j >= lo[s]:
            c = kids[j]
            hi[s] = j          # c and everything ending later: visited
            ce = ends[j]
            if t > ce:
                seg_span.append(s); seg_start.append(ce); seg_end.append(t)
            cursor[s] = starts[c]
            cursor[c] = ce
            s = c
        else:
            if t > starts[s]:
                seg_span.append(s); seg_start.append(starts[s]); seg_end.append(t)
            if s == root:
                break
            s = par[s]
    return (np.array(seg_span, np.int64), np.array(seg_start, np.int64),
            np.array(seg_end, np.int64))
