"""Self time: the part of a span's interval that none of its children
covers.  Children are clipped to the parent's interval first (time a child
spends outside its parent is not the parent's), and overlapping children
count once: child time = length of the union of the clipped children.
"""
from __future__ import annotations

import numpy as np


def child_time(parent: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per span (int64): length of the union of its children's intervals
    clipped to its own interval."""
    n = len(parent)
    out = np.zeros(n, np.int64)
    kids = np.flatnonzero(parent >= 0)
    p = parent[kids]
    cs = np.maximum(start[kids], start[p])
    ce = np.minimum(end[kids], end[p])
    keep = ce > cs
    kids, p, cs, ce = kids[keep], p[keep], cs[keep], ce[keep]
    if not len(kids):
        return out
    order = np.lexsort((cs, p))
    p, cs, ce = p[order], cs[order], ce[order]
    # a running maximum of the ends within each parent's group, in one
    # numpy pass: replace times by their ranks (order-preserving, < 2m) and
    # lift each group above the previous one, so no group's maximum leaks
    # into the next whatever the raw times are
    times, rank = np.unique(np.concatenate([cs, ce]), return_inverse=True)
    m = len(cs)
    width = np.int64(len(times) + 1)
    grp = np.cumsum(np.concatenate([[0], p[1:] != p[:-1]])).astype(np.int64)
    key = grp * width + rank[m:]
    running = np.maximum.accumulate(key)
    prev = np.concatenate([[-1], running[:-1]])
    same = prev >= grp * width
    prev_end = np.where(same, times[np.clip(prev - grp * width, 0, len(times) - 1)], cs)
    covered = np.maximum(0, ce - np.maximum(cs, prev_end))
    np.add.at(out, p, covered)
    return out
