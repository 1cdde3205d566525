"""adaptive_sampler on simulated traffic (an injected clock: deterministic,
no sleeping): convergence after rate steps, priority traces, consistency
of decisions across batches, Jaeger's remote sampling API."""
from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from otelplug.sidecar.processors import adaptive_sampler as ad
from otelplug.sidecar.sampling import otep235 as th
from otelplug.sidecar.sampling import tracestate as ts

from .helpers import Capture, counting_ack
from .test_sampling_common import (Defs, FakeClock, decoded, make_sampler, random_trace_ids,
                                   record_set, span, synthetic_batch)

TARGET = 100.0
INTERVAL = 10.0
TICKS_PER_SECOND = 10
SLOW_MS = 500


class Traffic:
    """Spans at a given rate, one batch per tick; 0.5% errors and 0.5% slow
    spans (each its own trace, as priority traces must be kept whole)."""

    def __init__(self, sampler, clock, defs):
        self.sampler, self.clock = sampler, clock
        tmpl = record_set([span(1, name="GET /x", dur_ms=20, rkey=defs.resource("frontend"))],
                          defs.defs)
        self.template = bytes(tmpl.buf)
        self.defs = defs.defs
        self.rng = np.random.default_rng(7)
        self.priority_sent = 0
        self.t0, self.ticks = clock.t, 0

    def run(self, rate: float, seconds: float, cap: Capture) -> list[tuple[int, int]]:
        """Sends for ``seconds``; returns (probabilistic, priority) kept per interval."""
        per_tick = int(rate / TICKS_PER_SECOND)
        out = []
        got_before = len(cap.got)
        for tick in range(int(seconds * TICKS_PER_SECOND)):
            ids = self.rng.integers(0, 256, size=(per_tick, 16), dtype=np.uint8)
            status = np.zeros(per_tick, np.uint8)
            special = self.rng.random(per_tick) < 0.01
            status[special] = 2
            rs = synthetic_batch(ids, self.template, self.defs, status=status)
            self.priority_sent += int(special.sum())
            self.sampler.consume(rs)
            self.ticks += 1
            self.clock.t = self.t0 + self.ticks / TICKS_PER_SECOND   # no float drift
            if (tick + 1) % int(INTERVAL * TICKS_PER_SECOND) == 0:
                kept = [s for r in cap.got[got_before:] for s in decoded(r)]
                prio = sum(1 for s in kept if s.status_code == 2)
                out.append((len(kept) - prio, prio))
                got_before = len(cap.got)
        return out


def _sampler(clock, **over):
    cfg = {"target_samples_per_second": TARGET, "calculation_interval": f"{INTERVAL}s",
           "initial_sampling_probability": 0.1, "endpoint": "", **over}
    cap = Capture()
    return make_sampler(ad.factory, cfg, cap, clock), cap


def _rates(kept):
    return [p / INTERVAL for p, _ in kept]


def test_converges_within_three_intervals_after_steps_up_and_down():
    clock = FakeClock()
    # a 20x drop needs 20x more probability; with increases capped at +200%
    # per interval (3x) that is reached in 3 intervals
    s, cap = _sampler(clock, percentage_increase_cap=2.0)
    traffic = Traffic(s, clock, Defs())
    warm = _rates(traffic.run(1000, 4 * INTERVAL, cap))
    up = _rates(traffic.run(20000, 5 * INTERVAL, cap))
    down = _rates(traffic.run(1000, 5 * INTERVAL, cap))
    assert abs(warm[-1] - TARGET) <= 0.1 * TARGET, warm
    # the interval of the step itself runs on the old probability; after at
    # most 3 recalculations the rate is within 10% (up: after 1)
    assert all(abs(r - TARGET) <= 0.1 * TARGET for r in up[1:]), up
    assert all(abs(r - TARGET) <= 0.1 * TARGET for r in down[3:]), down
    # and every priority (error) span was kept
    kept_prio = sum(1 for r in cap.got for sp in decoded(r) if sp.status_code == 2)
    assert kept_prio == traffic.priority_sent


def test_jaeger_default_cap_never_overshoots_and_takes_log2_steps():
    clock = FakeClock()
    s, cap = _sampler(clock)          # percentage_increase_cap 1.0: at most 2x per interval
    traffic = Traffic(s, clock, Defs())
    traffic.run(20000, 3 * INTERVAL, cap)
    down = _rates(traffic.run(1000, 8 * INTERVAL, cap))
    assert all(r <= 1.1 * TARGET for r in down), down
    # 20x needs ceil(log2 20) = 5 recalculations (4 doublings, then the
    # exact step), then the rate holds
    assert all(abs(r - TARGET) <= 0.1 * TARGET for r in down[5:]), down
    assert down[1] < 0.5 * TARGET, down


def test_jaeger_calculation_matches_post_aggregator():
    cfg = ad.AdaptiveSamplerConfig(target_samples_per_second=10, delta_tolerance=0.3,
                                   min_sampling_probability=1e-5)
    assert ad.next_probability(0.1, 12, 10, cfg) == 0.1            # within tolerance
    assert ad.next_probability(0.1, 100, 10, cfg) == pytest.approx(0.01)
    assert ad.next_probability(0.1, 1, 10, cfg) == pytest.approx(0.2)   # capped at +100%
    assert ad.next_probability(0.1, 0, 10, cfg) == pytest.approx(0.2)   # nothing sampled: double
    assert ad.next_probability(1e-5, 1e9, 10, cfg) == 1e-5
    assert ad.weights(3).tolist() == pytest.approx([81 / 98, 16 / 98, 1 / 98])


def test_errors_and_slow_traces_kept_whole_from_the_priority_batch_on():
    clock = FakeClock()
    s, cap = _sampler(clock, initial_sampling_probability=1e-5,
                      priority={"latency_threshold": f"{SLOW_MS}ms",
                                "attributes": [{"key": "vip", "values": ["yes"]}]})
    ids = random_trace_ids(300, seed=3)
    tid = [int.from_bytes(r.tobytes(), "big") for r in ids]
    spans = []
    for i, t in enumerate(tid):
        kind = i % 3
        spans.append(span(t, 2, status=2 if kind == 0 else 0, dur_ms=SLOW_MS if kind == 1 else 5,
                          attrs={"vip": "yes"} if kind == 2 else {}))
    s.consume(record_set(spans))
    # the rest of each trace arrives later, from "another process"
    s.consume(record_set([span(t, 3, parent=2) for t in tid]))
    got = [x for r in cap.got for x in decoded(r)]
    assert sorted((x.trace_id, x.span_id) for x in got) == sorted(
        [(t, 2) for t in tid] + [(t, 3) for t in tid])
    assert all(ts.parse(x.trace_state).threshold == 0 for x in got)   # th:0, adjusted count 1


def test_all_spans_of_a_trace_agree_even_when_probability_changes():
    clock = FakeClock()
    s, cap = _sampler(clock, initial_sampling_probability=0.5, decision_cache_size=1 << 14)
    ids = random_trace_ids(2000, seed=5)
    tid = [int.from_bytes(r.tobytes(), "big") for r in ids]
    s.consume(record_set([span(t, 1) for t in tid]))
    first = {x.trace_id for r in cap.got for x in decoded(r)}
    s.overall.probability = 0.01          # the next interval lowered it
    n0 = len(cap.got)
    s.consume(record_set([span(t, 2) for t in tid]))
    second = {x.trace_id for r in cap.got[n0:] for x in decoded(r)}
    assert first == second and 800 < len(first) < 1200
    # kept spans carry the threshold they were sampled with
    for x in decoded(cap.got[-1]):
        t = ts.parse(x.trace_state).threshold
        assert t == th.probability_to_threshold(0.5, 4) and (x.trace_id & th.RANDOMNESS_MASK) >= t


def test_acks_flow_with_kept_spans_and_settle_when_all_dropped():
    clock = FakeClock()
    s, cap = _sampler(clock, initial_sampling_probability=1e-5)
    ack, settled = counting_ack()
    s.consume(record_set([span(1, 1), span(2, 1)], acks=(ack,)))
    assert settled == [False] and not cap.got      # dropped: settled by the processor


def test_remote_sampling_endpoint_serves_per_operation_probabilities():
    clock = FakeClock()
    s, cap = _sampler(clock, endpoint="127.0.0.1:0", per_operation_target_samples_per_second=5)
    defs = Defs()
    rk = defs.resource("checkout")
    s.consume(record_set([span(i, 1, name="GET /cart" if i % 2 else "POST /pay", rkey=rk)
                          for i in range(1, 200)], defs.defs))
    s.start(None)
    try:
        url = f"http://{s.server.address}/sampling?service=checkout"
        body = json.loads(urllib.request.urlopen(url, timeout=5).read())
        assert body["strategyType"] == 0          # PROBABILISTIC, as Jaeger v2 writes it
        ops = {o["operation"]: o["probabilisticSampling"]["samplingRate"]
               for o in body["operationSampling"]["perOperationStrategies"]}
        assert set(ops) == {"GET /cart", "POST /pay"} and all(v == 0.1 for v in ops.values())
        assert body["operationSampling"]["defaultLowerBoundTracesPerSecond"] == pytest.approx(1 / 60)
        empty = json.loads(urllib.request.urlopen(
            f"http://{s.server.address}/sampling?service=nobody", timeout=5).read())
        assert empty["operationSampling"]["perOperationStrategies"] == []
    finally:
        s.shutdown()


def test_per_operation_targets_hold_each_operation_near_its_target():
    clock = FakeClock()
    s, cap = _sampler(clock, target_samples_per_second=10000, per_operation_target_samples_per_second=20,
                      percentage_increase_cap=2.0)
    defs = Defs()
    rk = defs.resource("svc")
    tmpl = {name: bytes(record_set([span(1, name=name, rkey=rk)], defs.defs).buf)
            for name in ("hot", "cold")}
    rng = np.random.default_rng(11)
    kept = {"hot": 0, "cold": 0}
    for tick in range(int(12 * INTERVAL * TICKS_PER_SECOND)):
        for name, rate in (("hot", 5000), ("cold", 100)):
            ids = rng.integers(0, 256, size=(rate // TICKS_PER_SECOND, 16), dtype=np.uint8)
            n0 = len(cap.got)
            s.consume(synthetic_batch(ids, tmpl[name], defs.defs))
            if tick >= 8 * INTERVAL * TICKS_PER_SECOND:
                kept[name] += sum(len(r) for r in cap.got[n0:])
        clock.advance(1 / TICKS_PER_SECOND)
    secs = 4 * INTERVAL
    assert abs(kept["hot"] / secs - 20) <= 2.5 and abs(kept["cold"] / secs - 20) <= 4, kept
