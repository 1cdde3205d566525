"""The span trees of one or many traces as numpy arrays: parent index,
depth, top-level span and each span's window (its interval clipped to
every ancestor's).

Many traces are handled in one pass (a forest: ``group`` says which trace
each span belongs to), because per-call numpy overhead, not per-span work,
dominates small traces.

Everything here is pointer doubling over the parent array: ceil(log2 n)
vectorised steps give each span its depth, its top-level span and the
intersection of its ancestors' intervals, so a 100,000-span chain costs 17
numpy passes instead of 100,000 Python steps.  The same passes find parent
cycles (bad input): after enough doublings a span whose ancestor pointer
has not run off the top of its tree is in, or hangs below, a cycle.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# a cycle is cut one link at a time (the smallest change to the input) for
# this many rounds; input with more cycles than that has every span that
# sits on a cycle cut at once, so the work stays bounded
_SINGLE_CUT_ROUNDS = 8


@dataclass
class Anomalies:
    """Bad input found in one trace; the analysis went on around it."""
    duplicate_span_ids: int = 0     # later copies of a span id, dropped
    invalid_span_ids: int = 0       # span id 0, dropped
    end_before_start: int = 0       # end set to start
    orphans: int = 0                # parent id set but no such span in the trace
    cycle_spans: int = 0            # spans in or below a parent cycle
    cycle_links_cut: int = 0        # parent links removed to break cycles
    outside_parent: int = 0         # children not inside their parent (skew, async)
    missing_root: bool = False      # no span without a parent id

    def as_dict(self) -> dict:
        return dict(self.__dict__)


ANOMALY_FIELDS = tuple(Anomalies().as_dict())


@dataclass
class Tree:
    parent: np.ndarray        # int64 index of the parent span, -1 for top-level
    depth: np.ndarray         # int64 edges from the top-level span
    top: np.ndarray           # int64 index of the top-level span above each span
    win_start: np.ndarray     # int64 span interval clipped to all ancestors
    win_end: np.ndarray
    cyclic: np.ndarray        # bool: in or below a parent cycle (before the cuts)
    cut: np.ndarray           # int64 spans whose parent link was cut
    outside: np.ndarray       # bool: not inside its parent's interval


def index_spans(span_id: np.ndarray, parent_span_id: np.ndarray, group: np.ndarray):
    """Which spans to analyse and who their parents are, with one sort.

    Returns (kept: indices into the input, grouped by trace and otherwise
    in input order; invalid: indices with span id 0; dups: later copies of
    an id within its trace; parent: per kept span, the index into ``kept``
    of its parent in the same trace or -1; orphan: per kept span, a parent
    id that no span of its trace has).  The first copy of an id is kept.
    """
    n = len(span_id)
    empty = np.zeros(0, np.int64)
    if not n:
        return empty, empty, empty, empty, np.zeros(0, bool)
    # (trace, id) pairs as one int64: ids replaced by their rank among the
    # distinct ids (< n); np.unique's hash path is slow for uint64 here
    ids = np.sort(span_id)
    ids = ids[np.concatenate([[True], ids[1:] != ids[:-1]])]
    g64 = group.astype(np.int64) << 32
    key = g64 | np.searchsorted(ids, span_id)
    order = np.argsort(key, kind="stable")
    skey = key[order]
    first = np.ones(n, bool)
    first[1:] = skey[1:] != skey[:-1]
    valid = span_id[order] != 0
    take = first & valid
    by_key = order[take]
    dups = order[~first & valid]
    invalid = np.flatnonzero(span_id == 0)
    kept = np.sort(by_key)
    gk = group[kept]
    if len(gk) > 1 and np.any(gk[1:] < gk[:-1]):
        kept = kept[np.argsort(gk, kind="stable")]
    where = np.empty(n, np.int64)
    where[kept] = np.arange(len(kept))
    kkey, kpos = skey[take], where[by_key]
    pid = parent_span_id[kept]
    prank = np.minimum(np.searchsorted(ids, pid), len(ids) - 1)
    pkey = g64[kept] | prank
    pos = np.minimum(np.searchsorted(kkey, pkey), max(len(kkey) - 1, 0))
    found = (pid != 0) & (ids[prank] == pid)
    if len(kkey):
        found &= kkey[pos] == pkey
    else:
        found[:] = False
    parent = np.where(found, kpos[pos] if len(kkey) else -1, -1).astype(np.int64)
    return kept, invalid, dups, parent, (pid != 0) & ~found


def _double(parent: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Pointer doubling: (unresolved ancestor, depth, top, window)."""
    n = len(parent)
    anc = parent.copy()
    dist = (parent >= 0).astype(np.int64)
    top = np.where(parent >= 0, parent, np.arange(n, dtype=np.int64))
    ws, we = start.copy(), end.copy()
    for _ in range(max(1, int(n).bit_length() + 1)):
        live = np.flatnonzero(anc >= 0)
        if not len(live):
            break
        a = anc[live]
        # every right-hand side reads the arrays of the previous step
        dist_a, ws_a, we_a, anc_a = dist[a], ws[a], we[a], anc[a]
        dist[live] += dist_a
        np.maximum(ws[live], ws_a, out=ws_a)
        np.minimum(we[live], we_a, out=we_a)
        ws[live], we[live] = ws_a, we_a
        anc[live] = anc_a
        top = top[top]
    return anc, dist, top, ws, we


def build_tree(parent: np.ndarray, start: np.ndarray, end: np.ndarray) -> Tree:
    parent = parent.copy()
    cyclic = np.zeros(len(parent), bool)
    cuts = []
    rounds = 0
    while True:
        anc, depth, top, ws, we = _double(parent, start, end)
        stuck = np.flatnonzero(anc >= 0)
        if not len(stuck):
            break
        cyclic[stuck] = True
        # after more than n hops an ancestor pointer stands on the cycle
        # itself: cutting the link above that span breaks this cycle
        on_cycle = np.unique(anc[stuck])
        cut = on_cycle[:1] if rounds < _SINGLE_CUT_ROUNDS else on_cycle
        parent[cut] = -1
        cuts.append(cut)
        rounds += 1
    has_parent = np.flatnonzero(parent >= 0)
    p = parent[has_parent]
    outside = np.zeros(len(parent), bool)
    outside[has_parent] = (start[has_parent] < start[p]) | (end[has_parent] > end[p])
    return Tree(parent, depth, top, ws, we, cyclic,
                np.concatenate(cuts) if cuts else np.zeros(0, np.int64), outside)
