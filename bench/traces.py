"""Trace assembly and analysis (issue 12): CPU per span of assembly +
analysis, memory per buffered span, and the critical path of a
100,000-span trace, each beside a peer measured in the same run.

Peer
    ``objects``: the same analysis written the usual way -- one Python
    object per span, a dict of children, a Jaeger-style critical-path walk
    and per-span self time over the objects (what a UI or a per-span
    processor does).  Same definitions, same results (checked on the first
    trace of each run).

Workload
    Traces of ``--spans-per-trace`` spans (default 20) over 4 services: a
    root server span, client spans with server children, parallel and
    sequential children, one child in ten outliving its parent.  Random
    trace ids; each trace's spans arrive spread over two consecutive
    batches of ``--batch`` spans, as ring drains interleave processes.

Measured (``--repeats`` interleaved rounds, medians)
    assembly   ``TraceAssembler.add`` per batch + ``poll`` closing the
               traces whose quiet gap passed (injected clock), i.e. buffer,
               close, build columns and ``analyse`` every trace
    objects    the peer on the same traces (build objects, analyse)
    memory     tracemalloc over ``add`` of 200,000 spans never closed, per span
    100k       ``analyse`` of one 100,000-span trace (random tree, and a
               100,000-deep chain), and the peer's critical path on it

Command::

    python bench/traces.py --repeats 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from otelplug.traces import TraceSpans, analyse  # noqa: E402
from otelplug.traces.assembly import AssemblyConfig, Batch, TraceAssembler  # noqa: E402

SERVICES = ["web", "api", "db-proxy", "worker"]
NAMES = [f"op{i}" for i in range(12)]


def make_traces(n_traces: int, per_trace: int, rng) -> dict:
    """Columns of n_traces traces, span i's parent drawn among earlier spans."""
    n = n_traces * per_trace
    local = np.tile(np.arange(per_trace), n_traces)
    trace_no = np.repeat(np.arange(n_traces), per_trace)
    span_id = (trace_no.astype(np.uint64) << np.uint64(20)) + local.astype(np.uint64) + 1
    parent_local = np.where(local == 0, -1,
                            (rng.random(n) * np.maximum(local, 1)).astype(np.int64))
    parent = np.where(parent_local < 0, 0,
                      (trace_no.astype(np.uint64) << np.uint64(20)) +
                      parent_local.clip(0).astype(np.uint64) + 1).astype(np.uint64)
    depth_scale = 1_000_000 // (1 + local)
    start = (local * 1000 + rng.integers(0, 500, n)).astype(np.int64)
    end = start + depth_scale + rng.integers(0, 1000, n)
    end[local == 0] = start[local == 0] + 2_000_000
    tid = rng.integers(0, 256, (n_traces, 16), dtype=np.uint8)[trace_no]
    return dict(trace_id=tid, span_id=span_id, parent_span_id=parent, start=start, end=end,
                name_id=rng.integers(0, len(NAMES), n), service_id=local % len(SERVICES),
                status_code=(rng.random(n) < 0.02).astype(np.uint8) * 2,
                kind=np.ones(n, np.uint8), trace_no=trace_no)


def batches(cols: dict, batch: int, per_trace: int):
    """Spread each trace over two consecutive batches: first halves of the
    traces of batch k ride with the second halves of batch k-1's."""
    n = len(cols["span_id"])
    local = np.tile(np.arange(per_trace), n // per_trace)
    half = local >= per_trace // 2
    pos = np.arange(n) + np.where(half, batch // 2, 0)
    order = np.argsort(pos, kind="stable")
    for a in range(0, n, batch):
        idx = order[a:a + batch]
        yield Batch(cols["span_id"][idx], cols["parent_span_id"][idx], cols["start"][idx],
                    cols["end"][idx], cols["name_id"][idx], NAMES, cols["service_id"][idx],
                    SERVICES, cols["status_code"][idx], cols["kind"][idx],
                    trace_id=cols["trace_id"][idx])


# -- the peer: one Python object per span ------------------------------------------
class _Span:
    __slots__ = ("sid", "pid", "start", "end", "name", "service", "children", "parent")

    def __init__(self, sid, pid, start, end, name, service):
        self.sid, self.pid, self.start, self.end = sid, pid, start, end
        self.name, self.service, self.children, self.parent = name, service, [], None


def objects_analyse(spans: list) -> tuple:
    by_id = {s.sid: s for s in spans}
    root = None
    for s in spans:
        p = by_id.get(s.pid) if s.pid else None
        if p is not None:
            p.children.append(s)
            s.parent = p
        elif s.pid == 0:
            root = s
    # windows top-down, then the walk (iterative: chains are deep)
    win = {root.sid: (root.start, root.end)}
    stack = [root]
    while stack:
        s = stack.pop()
        ws, we = win[s.sid]
        for c in s.children:
            win[c.sid] = (max(c.start, ws), min(c.end, we))
            stack.append(c)
    for s in spans:
        s.children.sort(key=lambda c: (win[c.sid][1], -win[c.sid][0], c.sid))
    crit = {}
    t = {root.sid: root.end}
    ptr = {s.sid: len(s.children) for s in spans}
    s = root
    while s is not None:
        cur = t[s.sid]
        kids = s.children
        j = ptr[s.sid] - 1
        while j >= 0 and (win[kids[j].sid][1] > cur or win[kids[j].sid][1] <= win[kids[j].sid][0]):
            j -= 1
        if j >= 0:
            c = kids[j]
            ptr[s.sid] = j
            ce = win[c.sid][1]
            crit[s.sid] = crit.get(s.sid, 0) + cur - ce
            t[s.sid] = win[c.sid][0]
            t[c.sid] = ce
            s = c
        else:
            crit[s.sid] = crit.get(s.sid, 0) + cur - win[s.sid][0]
            s = None if s is root else s.parent
    self_time = {}
    for s in spans:
        iv = sorted((max(c.start, s.start), min(c.end, s.end)) for c in s.children)
        covered, reach = 0, s.start
        for a, b in iv:
            if b > max(a, reach):
                covered += b - max(a, reach)
                reach = b
        self_time[s.sid] = s.end - s.start - covered
    by_op = {}
    for s in spans:
        by_op[s.name] = by_op.get(s.name, 0) + self_time[s.sid]
    return crit, self_time, by_op


def objects_from(cols, idx) -> list:
    return [_Span(int(cols["span_id"][i]), int(cols["parent_span_id"][i]),
                  int(cols["start"][i]), int(cols["end"][i]), NAMES[int(cols["name_id"][i])],
                  SERVICES[int(cols["service_id"][i])]) for i in idx.tolist()]


# -- cases ------------------------------------------------------------------------
def run_assembly(cols, batch, per_trace) -> float:
    asm = TraceAssembler(AssemblyConfig(quiet_gap=1.5, max_wait=1e9, max_spans=10**9))
    done = 0
    t0 = time.process_time()
    for k, b in enumerate(batches(cols, batch, per_trace)):
        asm.add(b, now=float(k))
        done += len(asm.poll(now=float(k)))
    done += len(asm.poll(now=1e6))
    cpu = time.process_time() - t0
    assert done == len(np.unique(cols["trace_no"])), done
    return cpu


def run_objects(cols, batch, per_trace) -> float:
    t0 = time.process_time()
    order = np.argsort(cols["trace_no"], kind="stable")
    bounds = np.flatnonzero(np.diff(cols["trace_no"][order])) + 1
    for idx in np.split(order, bounds):
        objects_analyse(objects_from(cols, idx))
    return time.process_time() - t0


def check_same(cols, per_trace):
    idx = np.arange(per_trace)
    crit, own, _ = objects_analyse(objects_from(cols, idx))
    a = analyse(TraceSpans(cols["span_id"][idx], cols["parent_span_id"][idx], cols["start"][idx],
                           cols["end"][idx], cols["name_id"][idx], NAMES,
                           cols["service_id"][idx], SERVICES, cols["status_code"][idx]))
    for i in range(per_trace):
        sid = int(a.spans.span_id[i])
        assert int(a.self_time[i]) == own[sid]
        assert int(a.critical_time[i]) == crit.get(sid, 0), (i, int(a.critical_time[i]), crit.get(sid))


def memory_per_span(per_trace, rng) -> tuple[float, float]:
    cols = make_traces(200_000 // per_trace, per_trace, rng)
    asm = TraceAssembler(AssemblyConfig(quiet_gap=1e9, max_wait=1e9, max_spans=10**9))
    bs = list(batches(cols, 8192, per_trace))
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for b in bs:
        asm.add(b, now=0.0)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / asm.buffered, used / asm.open_traces()


def big_trace(kind: str, rng, n=100_000):
    ids = np.arange(1, n + 1, dtype=np.uint64)
    if kind == "chain":
        par = np.concatenate([[0], ids[:-1]])
        start = np.arange(n, dtype=np.int64) * 10
        end = np.full(n, 20 * n, np.int64) - np.arange(n) * 5
    else:
        par = np.concatenate([[0], ids[(rng.random(n - 1) * np.arange(1, n)).astype(np.int64)]])
        start = rng.integers(0, 10**9, n)
        end = start + rng.integers(0, 10**8, n)
    return dict(span_id=ids, parent_span_id=par, start=start, end=end,
                name_id=rng.integers(0, len(NAMES), n), service_id=np.arange(n) % 4,
                status_code=np.zeros(n, np.uint8))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=5000)
    ap.add_argument("--spans-per-trace", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(12)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, cpus {os.cpu_count()}, "
          f"load {os.getloadavg()}")
    per = args.spans_per_trace
    cols = make_traces(args.traces, per, rng)
    n = len(cols["span_id"])
    check_same(cols, per)
    res = {"assembly": [], "objects": []}
    for r in range(args.repeats):
        for case in (("assembly", "objects") if r % 2 == 0 else ("objects", "assembly")):
            fn = run_assembly if case == "assembly" else run_objects
            cpu = fn(cols, args.batch, per)
            res[case].append(cpu / n * 1e6)
            print(f"  round {r + 1} {case:9s} {cpu / n * 1e6:7.2f} us CPU/span", flush=True)
    a, o = statistics.median(res["assembly"]), statistics.median(res["objects"])
    print(f"\nassembly + analysis: {a:.2f} us/span (goal <= 1 us); objects peer {o:.2f} us/span; "
          f"ratio peer/ours {o / a:.1f}x  ({n} spans, {args.traces} traces of {per})")
    per_span, per_trace = memory_per_span(per, rng)
    print(f"memory per buffered span {per_span:.0f} B ({per_trace:.0f} B per trace of {per}; "
          f"tracemalloc, 200,000 spans)")
    for kind in ("random tree", "chain"):
        big = big_trace("chain" if kind == "chain" else "tree", rng)
        spans = TraceSpans(big["span_id"], big["parent_span_id"], big["start"], big["end"],
                           big["name_id"], NAMES, big["service_id"], SERVICES, big["status_code"])
        ours, peer = [], []
        for _ in range(args.repeats):
            # CPU time: on a shared machine wall time mostly measures the neighbours
            t0 = time.process_time()
            an = analyse(spans)
            ours.append(time.process_time() - t0)
            objs = objects_from(big, np.arange(len(big["span_id"])))
            t0 = time.process_time()
            objects_analyse(objs)
            peer.append(time.process_time() - t0)
        m, p = statistics.median(ours) * 1e3, statistics.median(peer) * 1e3
        print(f"100,000-span trace ({kind}, path {len(an.path_span)} segments): analyse {m:.0f} ms "
              f"CPU (goal <= 100 ms); objects peer {p:.0f} ms; ratio {p / m:.1f}x")


if __name__ == "__main__":
    main()
