"""Brute-force references for the trace analysis, written from the
definitions (docstrings of otelplug/traces/critical_path.py and
self_time.py) without sharing code with them:
recursion over Python lists, unions counted cell by cell on integer times."""
from __future__ import annotations


def windows(parents: list[int], start: list[int], end: list[int]):
    """Each span's interval intersected with all its ancestors' (acyclic)."""
    def win(i):
        s, e = start[i], end[i]
        p = parents[i]
        while p >= 0:
            s, e = max(s, start[p]), min(e, end[p])
            p = parents[p]
        return s, e
    return [win(i) for i in range(len(parents))]


def critical_path(parents, start, end, root):
    ws_we = windows(parents, start, end)
    kids = {i: [c for c in range(len(parents)) if parents[c] == i] for i in range(len(parents))}
    segs = []

    def walk(s, t):
        while True:
            cands = [c for c in kids[s] if ws_we[c][1] > ws_we[c][0] and ws_we[c][1] <= t]
            if not cands:
                if t > ws_we[s][0]:
                    segs.append((s, ws_we[s][0], t))
                return
            c = max(cands, key=lambda c: (ws_we[c][1], -ws_we[c][0], c))
            if t > ws_we[c][1]:
                segs.append((s, ws_we[c][1], t))
            walk(c, ws_we[c][1])
            t = ws_we[c][0]

    walk(root, ws_we[root][1])
    return segs


def self_time_cells(parents, start, end):
    """Self time by counting unit cells [k, k+1) no child covers."""
    out = []
    for i in range(len(parents)):
        covered = set()
        for c in range(len(parents)):
            if parents[c] == i:
                covered.update(range(max(start[c], start[i]), min(end[c], end[i])))
        out.append(sum(1 for k in range(start[i], end[i]) if k not in covered))
    return out
