"""Shared pieces of the sampling tests (hand-built spans, a fake clock,
cheap synthetic batches), and the tests of the OTEP 235 / tracestate /
hashing helpers the samplers are built on."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from otelplug import codec
from otelplug.codec import model
from otelplug.sidecar.component import ComponentID, CreateSettings
from otelplug.sidecar.config.decode import decode
from otelplug.codec.recordset import RecordSet
from otelplug.sidecar.sampling import otep235 as th
from otelplug.sidecar.sampling import tracestate as ts
from otelplug.sidecar.sampling.decisions import DecisionTable, trace_keys
from otelplug.sidecar.sampling.hashing import fnv1a32, fnv1a64
from otelplug.sidecar.rewrite import encode_resource, encode_span
from otelplug.sidecar.telemetry import Telemetry


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def make_sampler(factory, config, next_consumer, clock=None, telemetry=None, signal="traces"):
    cfg = decode(factory.config, config)
    st = CreateSettings(ComponentID(factory.type), factory.kind, signal, telemetry or Telemetry(),
                        extra={"clock": clock} if clock else {})
    return factory.create(st, cfg, next_consumer)


class Defs:
    """Resource/scope definitions for hand-built spans."""

    def __init__(self):
        self.defs = {}

    def resource(self, service="svc", **attrs) -> int:
        payload = encode_resource(model.Resource(attributes={"service.name": service, **attrs}))
        k = codec.definition_key(payload)
        self.defs[k] = payload
        return k


def span(trace_id: int, span_id: int = 1, name="op", start_ms=0, dur_ms=1, status=0, attrs=None,
         parent=None, trace_state="", rkey=0, kind=2) -> model.SpanData:
    t0 = 1_700_000_000_000_000_000 + start_ms * 1_000_000
    return model.SpanData(trace_id=trace_id, span_id=span_id, name=name, trace_flags=1,
                          trace_state=trace_state, parent_span_id=parent, kind=kind,
                          start_time_unix_nano=t0, end_time_unix_nano=t0 + dur_ms * 1_000_000,
                          attributes=dict(attrs or {}), status_code=status, resource_key=rkey)


def record_set(spans, defs=None, acks=()) -> RecordSet:
    parts = [encode_span(s) for s in spans]
    return RecordSet.from_parts("traces", parts, dict(defs or {}), acks)


def decoded(records) -> list:
    return [codec.decode_span(p) for p in records.payloads()]


def synthetic_batch(trace_ids: np.ndarray, template: bytes, defs=None,
                    status: np.ndarray | None = None, names=None) -> RecordSet:
    """Many span records made from one template record, with the trace ids
    (and span ids, status) patched in with numpy: cheap enough for a
    million traces."""
    n = len(trace_ids)
    L = len(template)
    buf = np.tile(np.frombuffer(template, np.uint8), n).reshape(n, L)
    buf[:, 0:16] = trace_ids
    buf[:, 16:24] = np.arange(1, n + 1, dtype=">u8").view(np.uint8).reshape(n, 8)
    if status is not None:
        buf[:, 69] = status
    lengths = np.full(n, L, np.uint32)
    offsets = np.arange(n, dtype=np.uint64) * np.uint64(L)
    return RecordSet("traces", buf.tobytes(), offsets, lengths, dict(defs or {}))


def random_trace_ids(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 16), dtype=np.uint8)


def ids_as_ints(ids: np.ndarray) -> list[int]:
    return [int.from_bytes(r.tobytes(), "big") for r in ids]


# -- the helpers themselves --------------------------------------------------------
def test_threshold_encoding_matches_pkg_sampling_examples():
    # values from the Collector README / pkg/sampling tests
    assert th.tvalue(th.probability_to_threshold(0.25)) == "c"
    assert th.tvalue(th.probability_to_threshold(0.5)) == "8"
    assert th.tvalue(th.probability_to_threshold(1.0)) == "0"
    assert th.tvalue(th.probability_to_threshold(1 / 3, 4)) == "aaab"
    assert th.tvalue(th.probability_to_threshold(0.1, 4)) == "e666"
    assert th.parse_tvalue("8") == 1 << 55
    assert th.threshold_probability(th.parse_tvalue("c")) == 0.25
    with pytest.raises(th.ProbabilityRangeError):
        th.probability_to_threshold(0.0)
    # leading zeros of the rejection probability are free digits
    assert th.tvalue(th.probability_to_threshold(1 - 2 ** -20, 2)) == "00001"


def test_tracestate_update_keeps_other_vendors_and_moves_ot_first():
    h = ts.with_threshold("vendor=a,ot=rv:9b8233f7e3a151;x:1", th.parse_tvalue("8"))
    assert h == "ot=rv:9b8233f7e3a151;th:8;x:1,vendor=a"
    st = ts.parse(h)
    assert st.threshold == 1 << 55 and st.randomness == 0x9b8233f7e3a151
    with pytest.raises(ts.TraceStateError):
        ts.parse("ot=th:xyz!")


def test_fnv_vectorised_matches_reference():
    ids = random_trace_ids(50)

    def fnv(data, bits):
        h, p, m = (2166136261, 16777619, 2**32 - 1) if bits == 32 else \
            (14695981039346656037, 1099511628211, 2**64 - 1)
        for b in data:
            h = ((h ^ b) * p) & m
        return h
    seed = struct.pack("<I", 22)
    assert fnv1a32(seed, ids).tolist() == [fnv(seed + r.tobytes(), 32) for r in ids]
    assert fnv1a64(b"salt", ids).tolist() == [fnv(b"salt" + r.tobytes(), 64) for r in ids]
    # the reference itself is FNV-1a: the published test vectors for "a"
    assert fnv(b"a", 32) == 0xE40C292C and fnv(b"a", 64) == 0xAF63DC4C8601EC8C


def test_decision_table_bounded_and_exact_on_hits():
    t = DecisionTable(1000)
    assert t.size == 1024
    ids = random_trace_ids(5000)
    keys = trace_keys(ids)
    t.store(keys, np.arange(5000, dtype=np.uint64))
    hit, vals = t.lookup(keys)
    assert hit.sum() <= 1024 and hit[-100:].mean() > 0.8
    assert (vals[hit] == np.arange(5000)[hit]).all()    # a hit is never another trace's value
    assert t.nbytes == 1024 * 24
