"""The Cython OTLP encoder (otelplug._ext.otlp_encoder) against the reference
(otelplug.otlp.encode): for any span records, the fast bytes are exactly
``traces_request(records).SerializeToString(deterministic=True)``.

Strings that are not valid UTF-8 (lone surrogates, which the ring format
keeps) are the one intended difference: the fast encoder writes them with
U+FFFD replacements where the reference raises, so the expected request is
the reference's over records whose strings went through the same
replacement.  Corrupt records are left out (and counted) by default;
``strict=True`` raises ValueError as the reference does.
"""
from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelplug import codec
from otelplug.codec import model
from otelplug.otlp import encode
from otelplug.sidecar import rewrite
from otelplug.codec.recordset import RecordSet
from tests.requirements import require_native

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "codec"))
from codec_strategies import (any_values, attributes, attr_values, keys, readable_spans,  # noqa: E402
                              resources, scopes, text)

oe = require_native("otelplug._ext.otlp_encoder")
require_native("otelplug._ext.span_codec")
cy = codec.cython_impl


# -- expected bytes -----------------------------------------------------------------
def _clean(v):
    """What the fast encoder makes of a value: strings through UTF-8
    "replace" (lone surrogates become U+FFFD)."""
    if isinstance(v, str):
        return v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(v, dict):
        return {_clean(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return type(v)(_clean(x) for x in v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return dataclasses.replace(v, **{f.name: _clean(getattr(v, f.name))
                                         for f in dataclasses.fields(v)})
    return v


def expected(records) -> bytes:
    """The reference encoder's bytes, over cleaned strings."""
    ns = SimpleNamespace(decode_span=lambda p: _clean(cy.decode_span(p)),
                         decode_definition=lambda p: _clean(cy.decode_definition(p)))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(encode, "codec", ns)
        return encode.traces_request(records).SerializeToString(deterministic=True)


def check(records):
    fast = oe.encode_traces(records, strict=True)
    want = expected(records)
    assert ExportTraceServiceRequest.FromString(fast) == ExportTraceServiceRequest.FromString(want)
    assert fast == want
    return fast


def record_set(parts, defs) -> RecordSet:
    return RecordSet.from_parts("traces", parts, defs)


# -- strategies --------------------------------------------------------------------
@st.composite
def sdk_record_sets(draw):
    """SDK spans spread over a few resources and scopes (interleaved, so
    groups are not runs), some definitions missing, some keys 0."""
    spans = draw(st.lists(readable_spans(), min_size=0, max_size=8))
    res_pool = [cy.encode_resource(r) for r in draw(st.lists(resources, min_size=1, max_size=3))]
    scope_pool = [cy.encode_scope(s) for s in draw(st.lists(scopes, min_size=1, max_size=3))]
    defs, parts = {}, []
    for s in spans:
        rp = draw(st.sampled_from(res_pool))
        sp = draw(st.sampled_from(scope_pool))
        rk, sk = cy.definition_key(rp), cy.definition_key(sp)
        defs[rk], defs[sk] = rp, sp
        if draw(st.integers(0, 9)) == 0:
            sk = 0                    # a span without a scope
        parts.append(cy.encode_span(s, rk, sk))
    for k in list(defs):
        if draw(st.integers(0, 7)) == 0:
            del defs[k]               # never defined: exported as empty
    return record_set(parts, defs)


ids128 = st.one_of(st.just(0), st.integers(1, (1 << 128) - 1))
ids64 = st.one_of(st.just(0), st.integers(1, (1 << 64) - 1))
u32 = st.one_of(st.just(0), st.integers(1, 5), st.integers(0, (1 << 32) - 1))
u64 = st.one_of(st.just(0), st.integers(0, (1 << 64) - 1))
kv_values = st.one_of(attr_values, any_values)
kv = st.dictionaries(keys, kv_values, max_size=6)
trace_states = st.sampled_from(["", "a=1", "vendor=abc,rojo=00f067aa0ba902b7"])


@st.composite
def model_spans(draw):
    """SpanData with what SDK spans never have: zero ids, kind 0, an OK
    status with a description, nested kvlists and bytes in attributes,
    huge dropped counts, remote parents and links in every combination."""
    parent = draw(st.one_of(st.none(), ids64))
    return model.SpanData(
        trace_id=draw(ids128), span_id=draw(ids64), name=draw(text),
        trace_flags=draw(st.integers(0, 255)), trace_state=draw(trace_states),
        is_remote=draw(st.booleans()), parent_span_id=parent,
        parent_is_remote=draw(st.booleans()) if parent is not None else False,
        kind=draw(st.integers(0, 5)), start_time_unix_nano=draw(u64), end_time_unix_nano=draw(u64),
        attributes=draw(st.one_of(kv, attributes)),
        events=[model.SpanEvent(draw(text), draw(u64), draw(kv), draw(u32))
                for _ in range(draw(st.integers(0, 3)))],
        links=[model.SpanLink(draw(ids128), draw(ids64), draw(st.integers(0, 255)),
                              draw(trace_states), draw(st.booleans()), draw(kv), draw(u32))
               for _ in range(draw(st.integers(0, 3)))],
        status_code=draw(st.integers(0, 2)), status_description=draw(st.one_of(st.none(), text)),
        dropped_attributes=draw(u32), dropped_events=draw(u32), dropped_links=draw(u32),
        resource_key=draw(st.sampled_from([0, 7, 8])), scope_key=draw(st.sampled_from([0, 9, 10])))


@st.composite
def model_record_sets(draw):
    spans = draw(st.lists(model_spans(), max_size=6))
    defs = {}
    for k in (7, 8):
        if draw(st.booleans()):
            r = model.Resource(draw(kv), draw(st.one_of(st.none(), text)), draw(u32))
            defs[k] = rewrite.encode_resource(r)
    for k in (9, 10):
        if draw(st.booleans()):
            defs[k] = cy.encode_scope(draw(scopes))
    return record_set([rewrite.encode_span(s) for s in spans], defs)


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- tests -----------------------------------------------------------------------------
@SETTINGS
@given(rs=sdk_record_sets())
def test_sdk_spans_match_reference(rs):
    check(rs)


@SETTINGS
@given(rs=model_record_sets())
def test_model_spans_match_reference(rs):
    check(rs)


def test_realistic_batch_is_byte_identical_to_reference():
    """Plain valid UTF-8: no cleaning involved, the reference's bytes as is."""
    from tests.sidecar.helpers import records_from_spans, sdk_spans
    rs = records_from_spans(sdk_spans(500, attrs={"http.url": "http://x/é", "f": 1.5,
                                                  "arr": ("a", "b"), "ok": True, "e": ()}))
    fast = oe.encode_traces(rs)
    assert fast == encode.traces_request(rs).SerializeToString()
    assert len(ExportTraceServiceRequest.FromString(fast).resource_spans[0].scope_spans[0].spans) == 500


def test_nan_inf_and_signed_zero_keep_their_bits():
    nan_payload = float.fromhex("nan")
    s = model.SpanData(trace_id=1, span_id=2, name="x",
                       attributes={"nan": nan_payload, "inf": float("inf"), "ninf": float("-inf"),
                                   "nz": -0.0, "arr": (float("nan"), -0.0, 1e308)})
    check(record_set([rewrite.encode_span(s)], {}))


def test_remote_parent_and_link_flags():
    s = model.SpanData(trace_id=1, span_id=2, name="child", trace_flags=1, parent_span_id=3,
                       parent_is_remote=True,
                       links=[model.SpanLink(4, 5, 1, "k=v", True), model.SpanLink(6, 7, 0, "", False)])
    req = ExportTraceServiceRequest.FromString(oe.encode_traces(record_set([rewrite.encode_span(s)], {})))
    span = req.resource_spans[0].scope_spans[0].spans[0]
    assert span.flags == 0x301
    assert [lk.flags for lk in span.links] == [0x301, 0x100]
    assert span.links[0].trace_state == "k=v"
    root = model.SpanData(trace_id=1, span_id=2, name="root", trace_flags=1)
    req = ExportTraceServiceRequest.FromString(oe.encode_traces(record_set([rewrite.encode_span(root)], {})))
    assert req.resource_spans[0].scope_spans[0].spans[0].flags == 0x101   # as the SDKs: bit 8 on roots too


def test_span_flags_match_the_sdk_otlp_encoding():
    """Root, local child and remote child, as the SDK's own OTLP exporter
    encodes them (its encoder leaves out the W3C trace-flag bits 0-7, which
    otelplug carries as OTLP allows): HAS_IS_REMOTE on every span, IS_REMOTE
    for the remote parent only.  Both the Cython encoder and the pure
    reference."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace.span import SpanContext, TraceFlags

    ended = []

    class Keep(SpanExporter):
        def export(self, spans):
            ended.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = provider.get_tracer("flags")
    with tracer.start_as_current_span("root"):
        with tracer.start_as_current_span("local-child"):
            pass
    remote = SpanContext(0x1F, 0x2F, is_remote=True, trace_flags=TraceFlags(1))
    with tracer.start_as_current_span("remote-child",
                                      context=trace.set_span_in_context(trace.NonRecordingSpan(remote))):
        pass
    sdk = {s.name: s.flags for s in encode_spans(ended).resource_spans[0].scope_spans[0].spans}
    assert sdk == {"root": 0x100, "local-child": 0x100, "remote-child": 0x300}   # the SDK's own rule
    for sdk_span in ended:
        payload = cy.encode_span(sdk_span, 0, 0)
        fast = ExportTraceServiceRequest.FromString(oe.encode_traces(record_set([payload], {})))
        ref = encode.span_pb(cy.decode_span(payload))
        for ours in (fast.resource_spans[0].scope_spans[0].spans[0].flags, ref.flags):
            assert ours & ~0xFF == sdk[sdk_span.name], sdk_span.name
            assert ours & 0xFF == sdk_span.context.trace_flags


def test_empty_and_selected_and_owned_buffers():
    from tests.sidecar.helpers import records_from_spans, sdk_spans
    rs = records_from_spans(sdk_spans(20))
    assert oe.encode_traces(rs.select(np.zeros(len(rs), bool))) == b""
    assert oe.encode_traces(RecordSet("traces", b"", [], [], {})) == b""
    check(rs.select(np.arange(len(rs)) % 3 == 1))       # non-contiguous records
    check(rs.detach())                                    # offsets into a serialised set
    mv = RecordSet("traces", memoryview(bytearray(rs.buf)).toreadonly(), rs.offsets, rs.lengths, rs.defs)
    check(mv)


def test_definitions_are_cached_but_checked():
    """Keys are content hashes, but the cache does not trust that: the same
    key with another payload is transcoded again."""
    s = model.SpanData(trace_id=1, span_id=2, name="x", resource_key=77)
    rec = rewrite.encode_span(s)
    a = rewrite.encode_resource(model.Resource({"service.name": "a"}))
    b = rewrite.encode_resource(model.Resource({"service.name": "b"}))
    for payload, name in ((a, "a"), (b, "b"), (a, "a")):
        req = ExportTraceServiceRequest.FromString(oe.encode_traces(record_set([rec], {77: payload})))
        assert req.resource_spans[0].resource.attributes[0].value.string_value == name


# -- corrupt records ----------------------------------------------------------------------
def _corpus():
    from tests.sidecar.helpers import records_from_spans, sdk_spans
    rs = records_from_spans(sdk_spans(3, attrs={"a": ("x", "y"), "b": 1.5}))
    s = model.SpanData(trace_id=1, span_id=2, name="n", attributes={"m": {"k": (1, "x", None)}},
                       events=[model.SpanEvent("e", 5, {"a": b"\x00"})],
                       links=[model.SpanLink(3, 4, 1, "t=1", True, {"l": 1})])
    parts = [bytes(p) for p in rs.payloads()] + [rewrite.encode_span(s)]
    return parts, rs.defs


def _counts(fast: bytes) -> int:
    req = ExportTraceServiceRequest.FromString(fast)
    return sum(len(ss.spans) for r in req.resource_spans for ss in r.scope_spans)


def test_every_truncation_is_skipped_or_rejected():
    parts, defs = _corpus()
    for i, rec in enumerate(parts):
        for n in range(len(rec)):
            bad = parts[:i] + [rec[:n]] + parts[i + 1:]
            rs = record_set(bad, defs)
            before = oe.stats()["skipped_records"]
            assert _counts(oe.encode_traces(rs)) == len(parts) - 1
            assert oe.stats()["skipped_records"] == before + 1
            with pytest.raises(ValueError):
                oe.encode_traces(rs, strict=True)
            with pytest.raises(ValueError):
                encode.traces_request(rs)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 1 << 30), flips=st.integers(1, 8))
def test_bit_flips_never_crash(seed, flips):
    """Skip (or transcode) damaged records, never crash; the output always
    parses; where the reference accepts the records too, both agree."""
    rnd = random.Random(seed)
    parts, defs = _corpus()
    bad = []
    for rec in parts:
        b = bytearray(rec)
        for _ in range(flips):
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        bad.append(bytes(b))
    rs = record_set(bad, defs)
    before = oe.stats()["skipped_records"]
    fast = oe.encode_traces(rs)
    assert _counts(fast) == len(bad) - (oe.stats()["skipped_records"] - before)
    try:
        ref = encode.traces_request(rs)
    except (ValueError, TypeError, AttributeError):
        return
    got = ExportTraceServiceRequest.FromString(fast)
    if not _duplicate_keys(got):    # a flip can turn a key into its neighbour's
        assert got == ref


def _duplicate_keys(msg) -> bool:
    """Does any attribute list hold a key twice?  The reference decodes
    attributes into a dict (the last one wins); the fast encoder copies the
    list.  Producers never write duplicates: only damage makes them."""
    for fd, v in msg.ListFields():
        if fd.message_type is None:
            continue
        items = v if fd.is_repeated else [v]
        if fd.message_type.name == "KeyValue":
            names = [kv.key for kv in items]
            if len(set(names)) != len(names):
                return True
        if any(_duplicate_keys(x) for x in items):
            return True
    return False


@settings(max_examples=200, deadline=None)
@given(junk=st.lists(st.binary(max_size=300), max_size=5), defjunk=st.binary(max_size=60))
def test_random_bytes_never_crash(junk, defjunk):
    rs = record_set(junk, {1: defjunk})
    ExportTraceServiceRequest.FromString(oe.encode_traces(rs))
    try:
        oe.encode_traces(rs, strict=True)
    except ValueError:
        pass


def test_payload_for_uses_the_fast_encoder(monkeypatch):
    from tests.sidecar.helpers import records_from_spans, sdk_spans
    from otelplug.sidecar.exporters import otlp
    rs = records_from_spans(sdk_spans(5))
    calls = []
    real = oe.encode_traces
    monkeypatch.setattr(oe, "encode_traces", lambda r: calls.append(1) or real(r))
    assert otlp.payload_for(rs) == encode.traces_request(rs).SerializeToString()
    assert calls == [1]


def test_concat_copies_dense_and_sparse_sets():
    """RecordSet.concat copies a dense set (a ring batch) as one stretch and
    a sparse selection record by record; either way every payload is kept."""
    from tests.sidecar.helpers import records_from_spans, sdk_spans
    rs = records_from_spans(sdk_spans(40))
    dense = rs.select(np.arange(len(rs)) != 5)
    sparse = rs.select(np.arange(len(rs)) % 10 == 0)
    out = RecordSet.concat([dense, sparse, rs.select(np.zeros(len(rs), bool)), dense])
    want = [bytes(p) for s in (dense, sparse, dense) for p in s.payloads()]
    assert [bytes(p) for p in out.payloads()] == want
    assert oe.encode_traces(out) == encode.traces_request(out).SerializeToString()


# -- logs -------------------------------------------------------------------------------------
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402


@st.composite
def model_logs(draw):
    return model.LogData(
        time_unix_nano=draw(st.one_of(st.none(), u64)), observed_time_unix_nano=draw(u64),
        trace_id=draw(ids128), span_id=draw(ids64),
        trace_flags=draw(st.one_of(st.none(), st.integers(0, 255))),
        severity_number=draw(st.one_of(st.none(), st.integers(0, 24))),
        severity_text=draw(st.one_of(st.none(), text)), event_name=draw(st.one_of(st.none(), text)),
        body=draw(any_values), attributes=draw(st.one_of(kv, attributes)), dropped_attributes=draw(u32),
        resource_key=draw(st.sampled_from([0, 7, 8])), scope_key=draw(st.sampled_from([0, 9, 10])))


@st.composite
def log_record_sets(draw):
    logs = draw(st.lists(model_logs(), max_size=6))
    defs = {}
    for k in (7, 8):
        if draw(st.booleans()):
            defs[k] = rewrite.encode_resource(model.Resource(draw(kv), draw(st.one_of(st.none(), text)),
                                                             draw(u32)))
    for k in (9, 10):
        if draw(st.booleans()):
            defs[k] = cy.encode_scope(draw(scopes))
    rs = record_set([rewrite.encode_log(r) for r in logs], defs)
    rs.signal = "logs"
    return rs


@SETTINGS
@given(rs=log_record_sets())
def test_logs_match_reference(rs):
    fast = oe.encode_logs(rs, strict=True)
    ns = SimpleNamespace(decode_log=lambda p: _clean(cy.decode_log(p)),
                         decode_definition=lambda p: _clean(cy.decode_definition(p)))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(encode, "codec", ns)
        want = encode.logs_request(rs).SerializeToString(deterministic=True)
    assert ExportLogsServiceRequest.FromString(fast) == ExportLogsServiceRequest.FromString(want)
    assert fast == want


def test_corrupt_logs_are_skipped():
    good = rewrite.encode_log(model.LogData(time_unix_nano=5, body={"a": (1, "x")}, attributes={"k": 1}))
    for n in range(len(good)):
        rs = record_set([good, good[:n], good], {})
        rs.signal = "logs"
        assert len(ExportLogsServiceRequest.FromString(oe.encode_logs(rs))
                   .resource_logs[0].scope_logs[0].log_records) == 2
        with pytest.raises(ValueError):
            oe.encode_logs(rs, strict=True)


def test_payload_for_logs_uses_the_fast_encoder(monkeypatch):
    from otelplug.sidecar.exporters import otlp
    rs = record_set([rewrite.encode_log(model.LogData(time_unix_nano=1, body="hi"))], {})
    rs.signal = "logs"
    calls = []
    real = oe.encode_logs
    monkeypatch.setattr(oe, "encode_logs", lambda r: calls.append(1) or real(r))
    assert otlp.payload_for(rs) == encode.logs_request(rs).SerializeToString()
    assert calls == [1]
