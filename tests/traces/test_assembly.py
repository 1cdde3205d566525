"""Trace assembly: completion by quiet gap after the root, the max_wait
bound, the memory bound, late spans re-attached, forgotten traces."""
from __future__ import annotations

import numpy as np

from otelplug.traces.assembly import AssemblyConfig, Batch, TraceAssembler


def batch(*rows):
    """rows: (trace, span_id, parent_id, start, end, name, service)."""
    col = list(zip(*rows))
    names = sorted(set(col[5]))
    svcs = sorted(set(col[6]))
    n = len(rows)
    return Batch(np.array(col[1], np.uint64), np.array(col[2], np.uint64),
                 np.array(col[3], np.int64), np.array(col[4], np.int64),
                 np.array([names.index(x) for x in col[5]]), names,
                 np.array([svcs.index(x) for x in col[6]]), svcs,
                 np.zeros(n, np.uint8), np.zeros(n, np.uint8),
                 trace_id=np.array([[t] * 16 for t in col[0]], np.uint8).reshape(n, 16))


def assembler(**kw):
    return TraceAssembler(AssemblyConfig(**{"quiet_gap": 1.0, "max_wait": 10.0, **kw}))


def test_complete_after_root_and_quiet_gap():
    asm = assembler()
    asm.add(batch((1, 11, 10, 10, 40, "query", "api"), (2, 21, 0, 0, 5, "GET /b", "web")), now=0)
    asm.add(batch((1, 10, 0, 0, 100, "GET /a", "web"), (1, 12, 10, 40, 90, "render", "web")),
            now=0.5)
    assert [c.trace_id[0] for c in asm.poll(now=1.2)] == [2]      # trace 1 still in its gap
    (done,) = asm.poll(now=1.5)
    assert done.trace_id == bytes([1] * 16) and done.reason == "quiet"
    a = done.analysis
    assert a.span_count == 3 and a.duration == 100 and not a.anomalies.missing_root
    assert [a.spans.names[int(a.spans.name_id[i])] for i in a.path_span] == \
        ["GET /a", "render", "query", "GET /a"]
    assert asm.buffered == 0 and asm.open_traces() == 0


def test_trace_without_root_closes_at_max_wait_flagged():
    asm = assembler()
    asm.add(batch((3, 31, 30, 0, 10, "child", "api")), now=0)
    for now in (1, 5, 9.9):
        asm.add(batch((3, 32 + int(now), 30, 0, 10, "child", "api")), now=now)
        assert asm.poll(now) == []
    (done,) = asm.poll(now=10)
    assert done.reason == "max_wait" and done.analysis.anomalies.missing_root
    assert done.analysis.anomalies.orphans == 4


def test_memory_bound_closes_oldest_first_never_drops():
    asm = assembler(max_spans=10)
    closed = []
    for t in range(1, 8):
        closed += asm.add(batch(*[(t, 100 * t + i, 0 if i == 0 else 100 * t, 0, 10, "op", "s")
                                  for i in range(3)]), now=t * 0.01)
        assert asm.buffered <= 10
    assert [c.trace_id[0] for c in closed] == [1, 2, 3, 4]
    assert all(c.reason == "memory" and c.analysis.span_count == 3 for c in closed)
    assert asm.counts["closed_memory"] == 4 and asm.counts["spans"] == 21


def test_late_span_reopens_its_trace_and_is_analysed_again():
    asm = assembler(late_window=5.0)
    asm.add(batch((4, 40, 0, 0, 100, "root", "web")), now=0)
    (first,) = asm.poll(now=2)
    assert first.revision == 0 and first.analysis.span_count == 1
    asm.add(batch((4, 41, 40, 10, 60, "late", "worker")), now=3)
    assert asm.poll(now=3.5) == []
    (again,) = asm.poll(now=4.5)
    assert again.revision == 1 and again.late_spans == 1
    assert again.analysis.span_count == 2 and int(again.analysis.self_time.max()) == 50
    assert asm.counts["late_spans"] == 1 and asm.counts["traces"] == 1


def test_late_span_after_the_window_is_a_fragment():
    asm = assembler(late_window=5.0)
    asm.add(batch((5, 50, 0, 0, 100, "root", "web")), now=0)
    asm.poll(now=2)
    asm.poll(now=8)               # forgets the closed trace
    asm.add(batch((5, 51, 50, 10, 60, "late", "worker")), now=9)
    (frag,) = asm.poll(now=19)
    assert frag.revision == 0 and frag.analysis.anomalies.missing_root
    assert asm.counts["traces"] == 2 and asm.retained == 1
