"""Cycle detection on the pipeline graph joined by connectors."""
from __future__ import annotations


def find_cycles(edges: dict) -> list[list[tuple]]:
    """Each distinct cycle of ``edges`` (node -> [(label, next node)]) as
    [(node, label of the edge leaving it), ...], starting at its first
    node in iteration order.  Iterative depth-first search, so a long
    chain of pipelines cannot exhaust the stack."""
    cycles, seen_sets = [], set()
    done: set = set()
    for root in list(edges):
        if root in done:
            continue
        # path: [(node, label of edge taken from it)], on_path: node -> index
        path: list = []
        on_path: dict = {}
        stack = [(root, iter(edges.get(root, ())))]
        on_path[root] = 0
        path.append([root, None])
        while stack:
            node, it = stack[-1]
            step = next(it, None)
            if step is None:
                stack.pop()
                path.pop()
                del on_path[node]
                done.add(node)
                continue
            label, nxt = step
            path[-1][1] = label
            if nxt in on_path:
                cycle = [tuple(p) for p in path[on_path[nxt]:]]
                key = frozenset(cycle)
                if key not in seen_sets:
                    seen_sets.add(key)
                    cycles.append(cycle)
            elif nxt not in done:
                on_path[nxt] = len(path)
                path.append([nxt, None])
                stack.append((nxt, iter(edges.get(nxt, ()))))
    return cycles
