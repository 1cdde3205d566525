"""probabilistic_sampler: kept share within a binomial bound, agreement with
the SDK's samplers where the algorithms are the same, tracestate th/rv
values that parse back, and the Collector's error and priority rules."""
from __future__ import annotations

import math

import numpy as np
import pytest
from opentelemetry.sdk.trace._sampling_experimental import (composable_traceid_ratio_based,
                                                             composite_sampler)
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from otelplug import codec
from otelplug.sidecar.config import ConfigErrors
from otelplug.sidecar.config.decode import decode
from otelplug.sidecar.processors import probabilistic_sampler as ps
from otelplug.sidecar.sampling import otep235 as th
from otelplug.sidecar.sampling import tracestate as ts

from .helpers import Capture, counting_ack, make
from .test_sampling_common import decoded, ids_as_ints, random_trace_ids, record_set, span, synthetic_batch

N = 20000


def run(config, records):
    cap = Capture()
    p = make(ps.factory, config, cap)
    p.consume(records)
    return [s for r in cap.got for s in decoded(r)], p


def batch(ids):
    tmpl = bytes(record_set([span(1)]).buf)
    return synthetic_batch(ids, tmpl)


def binomial_ok(k, n, p, z=5.0):
    return abs(k - n * p) <= z * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("mode", ["hash_seed", "proportional", "equalizing"])
@pytest.mark.parametrize("pct", [1.0, 15.3, 50.0])
def test_kept_share_within_binomial_bound(mode, pct):
    kept, _ = run({"sampling_percentage": pct, "mode": mode, "hash_seed": 22},
                  batch(random_trace_ids(N, seed=int(pct * 10))))
    assert binomial_ok(len(kept), N, pct / 100), (len(kept), N * pct / 100)


def test_proportional_agrees_with_sdk_consistent_ratio_sampler_exactly():
    """The SDK's OTEP 235 sampler (composable_traceid_ratio_based) and
    proportional mode at full precision compute the same threshold and
    compare the same trace-id randomness: identical decisions, same th."""
    ids = random_trace_ids(5000, seed=9)
    for p in (0.1, 0.25, 1 / 3):
        kept, _ = run({"sampling_percentage": p * 100, "mode": "proportional",
                       "sampling_precision": 14}, batch(ids))
        ours = {s.trace_id: s.trace_state for s in kept}
        sdk = composite_sampler(composable_traceid_ratio_based(float(np.float32(p * 100)) / 100))
        theirs = {}
        for t in ids_as_ints(ids):
            r = sdk.should_sample(None, t, "op")
            if r.decision.is_sampled():
                theirs[t] = "ot=" + r.trace_state.get("ot")
        assert ours == theirs


def test_classic_traceidratio_is_a_different_algorithm_agreeing_only_in_share():
    """TraceIdRatioBased keeps trace ids whose low 64 bits are *below*
    p * 2**64; OTEP 235 keeps low-56-bit randomness *at or above* the
    threshold.  Same expected share, independent decisions: the overlap is
    that of two independent samplers (p**2), not p.  Only 0% and 100% agree."""
    ids = random_trace_ids(N, seed=4)
    p = 0.3
    kept, _ = run({"sampling_percentage": p * 100, "mode": "proportional"}, batch(ids))
    ours = {s.trace_id for s in kept}
    classic = TraceIdRatioBased(p)
    theirs = {t for t in ids_as_ints(ids) if classic.should_sample(None, t, "op").decision.is_sampled()}
    assert binomial_ok(len(theirs), N, p) and binomial_ok(len(ours), N, p)
    assert binomial_ok(len(ours & theirs), N, p * p)
    for pct, sdk_p in ((100, 1.0), (0, 0.0)):
        kept, _ = run({"sampling_percentage": pct, "mode": "proportional"}, batch(ids[:500]))
        s = TraceIdRatioBased(sdk_p)
        assert {x.trace_id for x in kept} == {t for t in ids_as_ints(ids[:500])
                                             if s.should_sample(None, t, "op").decision.is_sampled()}


def test_tracestate_thresholds_parse_back_and_are_consistent():
    ids = random_trace_ids(3000, seed=2)
    for mode in ("proportional", "equalizing", "hash_seed"):
        kept, _ = run({"sampling_percentage": 25, "mode": mode}, batch(ids))
        for s in kept:
            st = ts.parse(s.trace_state)
            assert st.threshold == th.parse_tvalue("c")
            rnd = st.randomness if mode == "hash_seed" else s.trace_id & th.RANDOMNESS_MASK
            assert rnd >= st.threshold
            assert (st.randomness is not None) == (mode == "hash_seed")
    # the bytes outside the tracestate are untouched
    src = record_set([span(7, 3, attrs={"a": 1, "b": "x"}, status=2)])
    kept, _ = run({"sampling_percentage": 100, "mode": "proportional"}, src)
    orig = codec.decode_span(src.payload(0))
    orig.trace_state = "ot=th:0"
    assert kept == [orig]


def test_proportional_multiplies_arriving_probability_and_equalizing_keeps_lower():
    # a span head-sampled at 50% (th:8), then 50% proportional -> 25% (th:c)
    t = (0xF0 << 48) | 1                     # randomness 0xf0000000000001 passes both
    kept, _ = run({"sampling_percentage": 50, "mode": "proportional"},
                  record_set([span(t, trace_state="ot=th:8,vendor=v")]))
    assert kept[0].trace_state == "ot=th:c,vendor=v"
    # equalizing at 50% leaves an arriving 25% alone (it may not raise probability)
    kept, _ = run({"sampling_percentage": 50, "mode": "equalizing"},
                  record_set([span(t, trace_state="ot=th:c")]))
    assert kept[0].trace_state == "ot=th:c"
    # an explicit rv is the randomness: rv below the threshold drops it
    kept, _ = run({"sampling_percentage": 50, "mode": "proportional"},
                  record_set([span(t, trace_state="ot=rv:00000000000001")]))
    assert kept == []


def test_errors_fail_closed_by_default_and_open_on_request():
    zero = record_set([span(0, 1), span(0, 2, trace_state="ot=th:zz")])
    kept, p = run({"sampling_percentage": 50, "mode": "proportional"}, zero)
    assert kept == []
    kept, _ = run({"sampling_percentage": 50, "mode": "proportional", "fail_closed": False}, zero)
    assert len(kept) == 2
    assert kept[0].trace_state == "ot=th:0"         # missing randomness: kept at 100%
    assert kept[1].trace_state == "ot=th:zz"        # unparseable: left alone
    # hash_seed mode refuses spans that already carry OTEP 235 values
    kept, _ = run({"sampling_percentage": 100, "mode": "hash_seed"},
                  record_set([span(5, trace_state="ot=th:8")]))
    assert kept == []


def test_sampling_priority_overrides():
    spans = [span(i + 1, attrs={"sampling.priority": v}) for i, v in enumerate([0, 1, "2", 0.0])]
    kept, p = run({"sampling_percentage": 0.001, "mode": "proportional"}, record_set(spans))
    assert [s.trace_id for s in kept] == [2, 3]
    assert all(s.trace_state == "ot=th:0" for s in kept)
    counts = p.settings.telemetry.get("processor_probabilistic_sampler_count_traces_sampled")
    assert counts.value(processor="probabilistic_sampler", policy="sampling_priority",
                        sampled="true") == 2


def test_acks_ride_with_kept_records_or_settle_when_none_kept():
    ack, settled = counting_ack()
    cap = Capture()
    p = make(ps.factory, {"sampling_percentage": 0}, cap)
    p.consume(record_set([span(1), span(2)], acks=(ack,)))
    assert settled == [False] and not cap.got


def test_logs_by_trace_id_and_by_record_attribute():
    from otelplug.codec.model import LogData
    from otelplug.codec.recordset import RecordSet
    from otelplug.sidecar.rewrite import encode_log
    rng = np.random.default_rng(3)
    parts = []
    for i in range(2000):
        r = LogData(time_unix_nano=1, body="x", attributes={"log.id": f"id-{i}"},
                    trace_id=int(rng.integers(1, 2**62)) << 64 | int(rng.integers(1, 2**62)),
                    span_id=1, trace_flags=1)
        parts.append(encode_log(r))
    logs = RecordSet.from_parts("logs", parts, {})
    for cfg in ({"sampling_percentage": 30},
                {"sampling_percentage": 30, "attribute_source": "record", "from_attribute": "log.id"}):
        cap = Capture()
        p = make(ps.factory, cfg, cap, signal="logs")
        p.consume(logs)
        kept = [codec.decode_log(x) for r in cap.got for x in r.payloads()]
        assert binomial_ok(len(kept), 2000, 0.3)
        assert all("sampling.threshold" in k.attributes for k in kept)
        if "from_attribute" in cfg:      # hash_seed mode: randomness recorded too
            assert all(len(k.attributes["sampling.randomness"]) == 14 for k in kept)


def test_config_validation_like_the_collector():
    with pytest.raises(ConfigErrors) as ei:
        decode(ps.ProbabilisticSamplerConfig, {"sampling_percentage": -1, "sampling_precision": 15,
                                               "mode": "fast"})
    msgs = " | ".join(str(e) for e in ei.value.errors)
    assert "mode: must be one of" in msgs
    with pytest.raises(ConfigErrors) as ei:
        decode(ps.ProbabilisticSamplerConfig, {"sampling_percentage": -1, "sampling_precision": 15})
    msgs = [str(e) for e in ei.value.errors]
    assert msgs == ["sampling_percentage: sampling rate is negative: -1.0%",
                    "sampling_precision: sampling precision is too great, should be <= 14: 15"]
    assert ps.ProbabilisticSamplerConfig(hash_seed=3).effective_mode(False) == "hash_seed"
    assert ps.ProbabilisticSamplerConfig().effective_mode(False) == "proportional"
