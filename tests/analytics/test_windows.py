"""Windows, sketch and group table of otelplug.analytics (pure numpy parts)."""
import multiprocessing

import numpy as np
import pytest

from otelplug.analytics.sketch import GroupSketch, Mapping
from otelplug.analytics.windows import StreamAggregator, StreamConfig, WindowSpec

S = 1_000_000_000


def agg(*specs, **kw):
    return StreamAggregator(StreamConfig(windows=list(specs), delay_ns=0, **kw))


def feed(a, times_s, groups, durs_ms=None, errs=None, now_s=None):
    t = (np.asarray(times_s, np.float64) * S).astype(np.int64)
    keys = sorted(set(groups))
    inv = np.array([keys.index(g) for g in groups])
    d = np.full(len(t), 1e6) if durs_ms is None else np.asarray(durs_ms, float) * 1e6
    e = np.zeros(len(t)) if errs is None else np.asarray(errs, float)
    a.add([(k,) for k in keys], lambda j: {"g": keys[j]}, inv, t, d, e,
          int((now_s if now_s is not None else 0) * S))


def rows(results):
    return sorted((r.window, int(r.start[i] // S), int(r.end[i] // S), int(r.group[i]),
                   int(r.count[i]), int(r.errors[i])) for r in results for i in range(len(r)))


def test_tumbling_counts_errors_and_closes_on_watermark():
    a = agg(WindowSpec("t10", "tumbling", size_ns=10 * S), allowed_lateness_ns=2 * S)
    feed(a, [1, 2, 9.5, 11], ["a", "a", "b", "a"], errs=[1, 0, 0, 0], now_s=0)
    assert a.advance(11 * S) == []                 # 10 + lateness 2 not passed yet
    out = a.advance(12 * S)
    assert rows(out) == [("t10", 0, 10, 1, 2, 1), ("t10", 0, 10, 2, 1, 0)]
    assert out[0].error_rate.tolist() == [0.5, 0.0]
    assert out[0].throughput.tolist() == [0.2, 0.1]


def test_late_items_are_counted_not_folded_into_closed_windows():
    a = agg(WindowSpec("t10", "tumbling", size_ns=10 * S), allowed_lateness_ns=1 * S)
    feed(a, [5], ["a"])
    assert rows(a.advance(11 * S)) == [("t10", 0, 10, 1, 1, 0)]
    feed(a, [6, 7, 12], ["a", "a", "a"], now_s=11)   # 6 and 7 are late
    assert a.late == 2
    assert rows(a.advance(30 * S)) == [("t10", 10, 20, 1, 1, 0)]


def test_hours_late_and_future_items_are_counted_and_hold_no_memory():
    a = agg(WindowSpec("t10", "tumbling", size_ns=10 * S), max_clock_skew_ns=60 * S)
    a.advance(10_000 * S)
    feed(a, [10_000 - 7200, 10_000 + 3600, 10_000 + 30], ["a", "a", "a"], now_s=10_000)
    assert (a.late, a.future) == (1, 1)
    assert list(a.windows[0].open) == [10_030 * S]


def test_hopping_puts_an_item_in_every_covering_window():
    a = agg(WindowSpec("h", "hopping", size_ns=30 * S, step_ns=10 * S))
    feed(a, [25], ["a"])
    got = rows(a.advance(100 * S))
    assert [(r[1], r[2]) for r in got] == [(0, 30), (10, 40), (20, 50)]


def test_session_windows_split_on_gap_and_merge_bridging_items():
    a = agg(WindowSpec("s", "session", gap_ns=5 * S), allowed_lateness_ns=0)
    feed(a, [0, 3, 20, 1], ["a", "a", "a", "b"])
    feed(a, [8], ["a"])            # 3 -> 8 is within the gap: same session
    feed(a, [16], ["a"])           # 8 -> 16 > gap, but 16 -> 20 <= gap
    out = rows(a.advance(100 * S))
    assert out == [("s", 0, 13, 1, 3, 0), ("s", 1, 6, 2, 1, 0), ("s", 16, 25, 1, 2, 0)]
    feed(a, [50], ["a"], now_s=100)          # its session closed long ago
    assert a.late == 1


def test_session_bridge_merges_two_open_sessions():
    a = agg(WindowSpec("s", "session", gap_ns=5 * S), allowed_lateness_ns=0)
    feed(a, [0, 10], ["a", "a"], durs_ms=[1, 2])
    feed(a, [5], ["a"], durs_ms=[3])
    out = a.advance(100 * S)
    assert rows(out) == [("s", 0, 15, 1, 3, 0)]
    assert out[0].max.tolist() == [3e6]


def test_cardinality_limit_overflow_and_expiry():
    a = agg(WindowSpec("t", "tumbling", size_ns=10 * S), group_limit=2, group_expiry_ns=60 * S)
    feed(a, [1, 1, 1, 1], ["a", "b", "c", "d"])
    assert a.groups.overflow_items == 2
    out = a.advance(20 * S)
    assert rows(out)[0][3] == 0 and rows(out)[0][4] == 2      # group 0: overflow
    assert a.groups.attributes[0] == {"otel.metric.overflow": True}
    assert a.groups.expire(1000 * S) == [1, 2] and a.groups.expired == 2
    feed(a, [1001], ["c"], now_s=1001)
    assert a.groups.overflow_items == 2 and len(a.groups) == 1


def test_quantiles_within_the_stated_relative_error():
    rng = np.random.default_rng(7)
    a = agg(WindowSpec("t", "tumbling", size_ns=10 * S), relative_accuracy=0.01)
    d = rng.lognormal(2, 1.2, 20000)
    g = ["x" if i % 3 else "y" for i in range(len(d))]
    feed(a, np.full(len(d), 1.0), g, durs_ms=d)
    out = a.advance(100 * S)[0]
    for j, name in enumerate(["x", "y"]):
        vals = d[np.array(g) == name] * 1e6
        exact = np.quantile(vals, [0.5, 0.95, 0.99], method="lower")
        assert np.all(np.abs(out.quantiles[j] - exact) <= 0.01 * exact + 1e-9)
        assert out.max[j] == vals.max()


def _sketch_part(seed):
    m = Mapping(0.02)
    s = GroupSketch(m)
    rng = np.random.default_rng(seed)
    s.add(rng.integers(0, 5, 5000), rng.lognormal(10, 2, 5000))
    return s.state()


def test_sketches_from_other_processes_merge_exactly():
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        parts = pool.map(_sketch_part, [1, 2])
    m = Mapping(0.02)
    merged = GroupSketch(m)
    for state in parts:
        merged.merge(GroupSketch.from_state(m, state))
    whole = GroupSketch(m)
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        whole.add(rng.integers(0, 5, 5000), rng.lognormal(10, 2, 5000))
    for a, b in zip(merged.state(), whole.state()):
        assert np.array_equal(a, b)
    q = merged.quantiles(np.arange(6), [0.5])
    assert np.isnan(q[5, 0]) and not np.isnan(q[:5]).any()


def test_accuracy_must_be_a_fraction():
    with pytest.raises(ValueError):
        Mapping(1.5)


@pytest.mark.parametrize("kind", ["session", "hopping"])
def test_batched_fast_paths_equal_the_general_path(kind):
    """Short batches take the vectorised paths (sessions assigned with
    numpy, hopping windows from panes); one batch per item takes the
    general path; both give the same windows."""
    rng = np.random.default_rng(5)
    n = 3000
    t = np.sort(rng.uniform(0, 120, n))
    t[rng.random(n) < 0.05] -= rng.uniform(0, 4, int((rng.random(n) < 0.05).sum()) or 1)[0]  # some disorder
    g = [f"g{x}" for x in rng.integers(0, 7, n)]
    d = rng.lognormal(1, 1, n)
    spec = (WindowSpec("s", "session", gap_ns=4 * S // 10) if kind == "session"
            else WindowSpec("h", "hopping", size_ns=10 * S, step_ns=2 * S))

    def run(batch_s):
        a = agg(spec, allowed_lateness_ns=2 * S)
        out, lo = [], 0
        while lo < n:
            hi = lo + 1 if batch_s == 0 else int(np.searchsorted(t, t[lo] + batch_s))
            hi = max(hi, lo + 1)
            feed(a, t[lo:hi], g[lo:hi], durs_ms=d[lo:hi], now_s=float(t[lo]))
            out += a.advance(int(t[hi - 1] * S))
            lo = hi
        out += a.advance(1000 * S)
        return sorted((r.window, int(r.start[i]), int(r.end[i]), int(r.count[i]), round(float(r.max[i])),
                       round(float(r.quantiles[i, 1]))) for r in out for i in range(len(r))), a.late

    fast, slow = run(0.2), run(0)
    assert fast == slow and len(fast[0]) > 10
