"""Trace analysis against hand-computed traces and a brute-force reference."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from otelplug.traces import TraceSpans, analyse, analyse_many

from . import reference


def trace(rows, status=None):
    """rows: (span_id, parent_id, start, end, name, service)."""
    sid, pid, s, e, names, svcs = zip(*rows)
    return TraceSpans.build(sid, pid, s, e, names, svcs, status_code=status)


def path(a):
    return [(a.spans.names[int(a.spans.name_id[i])], int(s), int(e))
            for i, s, e in zip(a.path_span, a.path_start, a.path_end)]


def per_span(a, values):
    return {a.spans.names[int(a.spans.name_id[i])]: int(v) for i, v in enumerate(values)}


def test_sequential_children():
    a = analyse(trace([(1, 0, 0, 100, "root", "web"), (2, 1, 10, 40, "A", "web"),
                       (3, 1, 40, 90, "B", "db")]))
    assert path(a) == [("root", 90, 100), ("B", 40, 90), ("A", 10, 40), ("root", 0, 10)]
    assert per_span(a, a.self_time) == {"root": 20, "A": 30, "B": 50}
    assert per_span(a, a.child_time) == {"root": 80, "A": 0, "B": 0}
    assert a.span_count == 3 and a.max_depth == 2 and a.duration == 100
    svc = {r["label"]: r for r in a.by_service.rows()}
    assert svc["web"]["critical_ns"] == 50 and svc["db"]["critical_ns"] == 50
    assert svc["web"]["self_ns"] == 50 and svc["web"]["count"] == 2


def test_parallel_children_only_the_last_finishing_is_critical():
    a = analyse(trace([(1, 0, 0, 100, "root", "web"), (2, 1, 10, 60, "A", "web"),
                       (3, 1, 20, 80, "B", "web")]))
    assert path(a) == [("root", 80, 100), ("B", 20, 80), ("root", 0, 20)]
    assert per_span(a, a.self_time) == {"root": 30, "A": 50, "B": 60}
    assert per_span(a, a.critical_time) == {"root": 40, "A": 0, "B": 60}


def test_async_fan_out_and_children_outliving_the_parent():
    # A outlives the root, C starts after the root has ended (fire and forget)
    a = analyse(trace([(1, 0, 0, 50, "root", "web"), (2, 1, 10, 200, "A", "worker"),
                       (3, 1, 20, 30, "B", "worker"), (4, 1, 60, 70, "C", "worker"),
                       (5, 2, 100, 150, "A1", "worker")]))
    assert path(a) == [("A", 10, 50), ("root", 0, 10)]
    assert per_span(a, a.self_time) == {"root": 10, "A": 140, "B": 10, "C": 10, "A1": 50}
    assert a.anomalies.outside_parent == 2       # A and C
    assert int(a.critical_time.sum()) == a.duration == 50


def test_skewed_clock_child_is_clipped_to_its_parent():
    # the db host's clock runs 30 behind: its server span seems to start
    # before the client span that caused it
    a = analyse(trace([(1, 0, 0, 100, "GET /", "web"), (2, 1, -30, 50, "SELECT", "db"),
                       (3, 2, -20, 40, "scan", "db")]))
    assert path(a) == [("GET /", 50, 100), ("SELECT", 40, 50), ("scan", 0, 40)]
    assert per_span(a, a.self_time) == {"GET /": 50, "SELECT": 20, "scan": 60}
    assert a.anomalies.outside_parent == 1


def test_counts_errors_and_depth():
    a = analyse(trace([(1, 0, 0, 10, "r", "s"), (2, 1, 1, 9, "a", "s"), (3, 2, 2, 8, "b", "s")],
                      status=[0, 2, 2]))
    assert a.error_count == 2 and a.max_depth == 3
    ops = {r["label"]: r["errors"] for r in a.by_operation.rows()}
    assert ops == {"r": 0, "a": 1, "b": 1}


def test_bad_input_is_counted_not_fatal():
    rows = [(1, 0, 0, 100, "root", "s"),
            (2, 3, 10, 20, "cyc-a", "s"), (3, 2, 12, 18, "cyc-b", "s"),   # a 2-cycle
            (4, 4, 30, 40, "self-parent", "s"),
            (5, 1, 50, 40, "backwards", "s"),                             # end < start
            (5, 1, 60, 70, "dup", "s"),                                   # duplicate id
            (0, 1, 1, 2, "no-id", "s"),
            (6, 99, 1, 2, "orphan", "s")]
    a = analyse(trace(rows))
    an = a.anomalies
    assert (an.duplicate_span_ids, an.invalid_span_ids, an.end_before_start, an.orphans) == \
        (1, 1, 1, 1)
    assert an.cycle_spans == 3 and an.cycle_links_cut == 2
    assert a.span_count == 6 and not an.missing_root
    assert int(a.critical_time.sum()) == 100


def test_missing_root_uses_the_orphan_that_ends_last():
    a = analyse(trace([(2, 7, 0, 30, "early", "s"), (3, 7, 5, 90, "late", "s"),
                       (4, 3, 10, 20, "child", "s")]))
    assert a.anomalies.missing_root and a.anomalies.orphans == 2
    assert path(a) == [("late", 20, 90), ("child", 10, 20), ("late", 5, 10)]


def test_large_traces_chain_and_fan_out():
    n = 100_000
    ids = np.arange(1, n + 1, dtype=np.uint64)
    chain = TraceSpans.build(ids, np.concatenate([[0], ids[:-1]]), np.arange(n),
                             np.full(n, 2 * n), ["op"] * n, ["svc"] * n)
    a = analyse(chain)
    assert a.max_depth == n and len(a.path_span) == n
    assert int(a.critical_time.sum()) == 2 * n
    fan = TraceSpans.build(ids, np.concatenate([[0], np.ones(n - 1, np.uint64)]),
                           np.concatenate([[0], np.arange(n - 1)]),
                           np.concatenate([[n + 5], np.arange(n - 1) + 3]),
                           ["op"] * n, ["svc"] * n)
    b = analyse(fan)
    assert b.max_depth == 2 and int(b.critical_time.sum()) == n + 5


@st.composite
def random_trace(draw):
    n = draw(st.integers(1, 25))
    parents = [-1] + [draw(st.integers(-1, i - 1)) for i in range(1, n)]
    start = [draw(st.integers(0, 40)) for _ in range(n)]
    end = [s + draw(st.integers(0, 40)) for s in start]
    perm = draw(st.permutations(range(n)))
    return parents, start, end, perm


@settings(max_examples=300, deadline=None)
@given(random_trace())
def test_matches_brute_force_reference(t):
    parents, start, end, perm = t
    n = len(parents)
    # span ids 100+i; top-level spans other than 0 are orphans (unknown parent)
    pid = [0 if i == 0 else (100 + p if p >= 0 else 7) for i, p in enumerate(parents)]
    order = list(perm)          # present the spans in a shuffled order
    a = analyse(TraceSpans.build([100 + i for i in order], [pid[i] for i in order],
                                 [start[i] for i in order], [end[i] for i in order],
                                 [f"op{i}" for i in order], [f"s{i % 3}" for i in order]))
    back = {int(a.spans.span_id[k]) - 100: k for k in range(n)}
    assert a.root == back[0]
    want_path = reference.critical_path(parents, start, end, 0)
    got_path = [(int(a.spans.span_id[s]) - 100, int(x), int(y))
                for s, x, y in zip(a.path_span, a.path_start, a.path_end)]
    assert got_path == want_path
    assert sum(y - x for _, x, y in got_path) == end[0] - start[0]
    want_self = reference.self_time_cells(parents, start, end)
    assert [int(a.self_time[back[i]]) for i in range(n)] == want_self
    assert [int(a.child_time[back[i]]) for i in range(n)] == \
        [end[i] - start[i] - want_self[i] for i in range(n)]
    depth = [0] * n
    for i in range(1, n):
        depth[i] = depth[parents[i]] + 1 if parents[i] >= 0 else 0
    assert [int(a.depth[back[i]]) for i in range(n)] == depth
    assert a.anomalies.orphans == sum(1 for i in range(1, n) if parents[i] < 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(random_trace(), min_size=1, max_size=6))
def test_many_traces_in_one_pass_equal_one_at_a_time(traces):
    # the same span ids in every trace: ids only link within their trace
    rows, group = [], []
    for g, (parents, start, end, _) in enumerate(traces):
        for i, p in enumerate(parents):
            rows.append((100 + i, 0 if i == 0 else (100 + p if p >= 0 else 7), start[i], end[i],
                         f"op{i % 4}", f"s{i % 3}"))
            group.append(g)
    sid, pid, s, e, names, svcs = zip(*rows)
    forest = analyse_many(TraceSpans.build(sid, pid, s, e, names, svcs), np.array(group))
    for g in range(len(traces)):
        idx = [k for k, x in enumerate(group) if x == g]
        one = analyse(TraceSpans.build(*(np.array(c)[idx] for c in (sid, pid, s, e, names, svcs))))
        got = forest.trace(g)
        assert got.summary() == one.summary()
        assert got.self_time.tolist() == one.self_time.tolist()
        assert got.parent.tolist() == one.parent.tolist()
        assert got.root == one.root


def test_empty_and_all_dropped_traces():
    forest = analyse_many(TraceSpans.build([0, 5, 5], [0, 0, 0], [0, 0, 0], [1, 1, 1],
                                           ["a"] * 3, ["s"] * 3), np.array([0, 2, 2]), 4)
    assert forest.trace(0).span_count == 0 and forest.trace(0).anomalies.invalid_span_ids == 1
    assert forest.trace(2).anomalies.duplicate_span_ids == 1
    assert forest.trace(3).root == -1 and forest.trace(3).anomalies.missing_root


@settings(max_examples=150, deadline=None)
@given(st.lists(random_trace(), min_size=1, max_size=5))
def test_c_walk_equals_the_python_reference(traces):
    from otelplug.traces.critical_path import PathWalker, _native
    from otelplug.traces.tree import build_tree
    if _native() is None:
        from tests.requirements import missing
        missing("the trace_walk extension", "python setup.py build_ext --inplace")
    parent, start, end, roots = [], [], [], []
    for parents, s, e, _ in traces:
        base = len(parent)
        roots.append(base)
        parent += [p + base if p >= 0 else -1 for p in parents]
        start += s
        end += e
    parent, start, end = (np.array(x, np.int64) for x in (parent, start, end))
    tree = build_tree(parent, start, end)
    ids = np.arange(1, len(parent) + 1, dtype=np.uint64)
    roots = np.array(roots + [-1], np.int64)
    c = PathWalker(tree.parent, tree.win_start, tree.win_end, ids).walk_all(roots)
    py = PathWalker(tree.parent, tree.win_start, tree.win_end, ids, native=False).walk_all(roots)
    assert c[0].tolist() == py[0].tolist() and c[1].tolist() == py[1].tolist()
