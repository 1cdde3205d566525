"""Span shape hashes (``otelplug._ext.span_shape``) and the semconv engine's
use of them.

* the native hash of a record equals the pure-Python reference
  (``semconvcheck.shapes``) computed from the decoded span, for any span the
  codec can carry (every AnyValue kind, events, links), for several seeds;
* equal hashes <=> equal engine cache keys (``Engine.span_key``), so a hash
  hit gives exactly the verdict a full decode would;
* truncated and corrupted records: never a crash, hash 0 (checked alone by
  the slow path) or the reference's hash;
* the engine with native shapes and without (decoding every span) give the
  same output records, findings counters, item counts and statistics,
  batch after batch, within and beyond the cache bounds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelplug import codec
from otelplug.codec import model
from otelplug.codec.recordset import RecordSet
from otelplug.sidecar.semconvcheck import shapes as ref
from otelplug.sidecar.processors import semconv
from otelplug.sidecar.semconvcheck.config import SemconvConfig
from otelplug.sidecar.semconvcheck.engine import Engine
from otelplug.sidecar.rewrite import encode_resource, encode_span
from otelplug.sidecar.telemetry import Telemetry

from tests.requirements import require_native

from .helpers import Capture, make

span_shape = require_native("otelplug._ext.span_shape")
#: the engine uses native shapes with the Cython codec only (not with OTELPLUG_PURE_PYTHON=1)
needs_native_engine = pytest.mark.skipif(codec.default_impl().name != "cython",
                                         reason="the engine decodes every span with the pure-Python codec")

REGISTRY = """
groups:
  - id: registry.app
    type: attribute_group
    brief: App attributes.
    attributes:
      - id: app.mode
        type:
          members:
            - {id: fast, value: fast, stability: stable}
            - {id: slow, value: slow, stability: stable}
        stability: stable
        brief: Mode.
      - id: app.level
        type:
          members:
            - {id: one, value: 1, stability: stable}
            - {id: two, value: 2, stability: development}
        stability: stable
        brief: Level.
      - id: app.user
        type: string
        stability: stable
        brief: User.
        examples: [bob]
      - id: app.old
        type: string
        stability: stable
        brief: Old name of app.user.
        deprecated: {reason: renamed, renamed_to: app.user}
        examples: [bob]
      - id: app.beta
        type: int
        stability: development
        brief: Not stable yet.
        examples: [1]
      - id: app.tags
        type: string[]
        stability: stable
        brief: Tags.
        examples: [[a, b]]
  - id: span.app.work
    type: span
    span_kind: internal
    stability: stable
    brief: Work.
    attributes:
      - ref: app.mode
        requirement_level: required
      - ref: app.user
        requirement_level: recommended
  - id: event.app.step
    type: event
    name: app.step
    stability: stable
    brief: A step.
    attributes:
      - ref: app.mode
        requirement_level: required
"""

ENUMS = ("app.mode", "app.level")
KEYS = ENUMS + ("app.user", "app.old", "app.beta", "app.tags", "custom", "Bad Key", "ünï.cödé")
NAMES = ("app.work", "misc", "", "a name longer than sixteen bytes", "naïve")


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("shapes") / "registry"
    d.mkdir()
    (d / "app.yaml").write_text(REGISTRY)
    return str(d)


@pytest.fixture(scope="module")
def engine(registry) -> Engine:
    return Engine(SemconvConfig(registry=registry), Telemetry(), "semconv")


# -------------------------------------------------------------- strategies

scalars = st.one_of(
    st.sampled_from(["fast", "slow", "turbo", "", "x" * 20, "\ud800lone"]),
    st.text(max_size=20),
    st.integers(-2**63, 2**63 - 1), st.sampled_from([0, 1, 2, -1]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1.0, math.nan]),
    st.booleans(), st.none(), st.binary(max_size=10))

values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(tuple),
        st.lists(st.sampled_from(["a", "b"]), max_size=3).map(tuple),
        st.lists(st.integers(-5, 5), max_size=3).map(tuple),
        st.lists(st.floats(allow_nan=False), max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["k", "v"]), inner, max_size=2)),
    max_leaves=6)

attributes = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
events = st.lists(st.builds(model.SpanEvent, st.sampled_from(["app.step", "nope", ""]),
                            st.integers(0, 2**63), attributes), max_size=2)
links = st.lists(st.builds(model.SpanLink, st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1),
                           attributes=attributes), max_size=2)
spans = st.builds(model.SpanData, trace_id=st.integers(1, 2**128 - 1), span_id=st.integers(1, 2**64 - 1),
                  name=st.sampled_from(NAMES), kind=st.integers(0, 5), attributes=attributes,
                  events=events | st.just([]), links=links | st.just([]),
                  status_description=st.none() | st.text(max_size=5),
                  trace_state=st.sampled_from(["", "a=b"]))

# spans whose shapes repeat (few names, keys, values): equal keys do occur
small_values = st.sampled_from(["fast", "slow", "turbo", 1, 2, 1.5, True, None, ("a",), ("a", 1), (),
                                (1, 2.0), b"x"])
small_attrs = st.dictionaries(st.sampled_from(KEYS[:5]), small_values, max_size=3)
small_spans = st.builds(
    model.SpanData, trace_id=st.just(1), span_id=st.integers(1, 1000),
    name=st.sampled_from(NAMES[:2]), kind=st.integers(1, 2), attributes=small_attrs,
    events=st.lists(st.builds(model.SpanEvent, st.sampled_from(["app.step", "nope"]), st.just(1),
                              small_attrs), max_size=1),
    links=st.lists(st.builds(model.SpanLink, st.just(1), st.just(2), attributes=small_attrs), max_size=1))

# denser still: the same few shapes with different enum values and types
dense_attrs = st.fixed_dictionaries(
    {"app.mode": st.sampled_from(["fast", "turbo", "slow", 1, ("a",), ("fast", "x")])},
    optional={"app.level": st.sampled_from([1, 2, 3, "1"]), "app.user": st.sampled_from(["bob", 7, ("a", 1)])})
dense_spans = st.builds(
    model.SpanData, trace_id=st.just(1), span_id=st.just(2), name=st.just("app.work"),
    kind=st.sampled_from([1, 1, 1, 2]), attributes=dense_attrs,
    events=st.lists(st.builds(model.SpanEvent, st.just("app.step"), st.just(1), dense_attrs), max_size=1)
    | st.just([]))


def records(items, resource_key=0) -> RecordSet:
    parts = []
    for s in items:
        s.resource_key = resource_key
        parts.append(encode_span(s))
    defs = {}
    if resource_key:
        rp = encode_resource(model.Resource({"service.name": "svc"}))
        defs[resource_key] = rp
    return RecordSet.from_parts("traces", parts, defs)


def decoded(rs: RecordSet):
    return [codec.decode_span(p) for p in rs.payloads()]


# ------------------------------------------------- native == reference

@settings(max_examples=300, deadline=None)
@given(st.lists(spans, max_size=8), st.sampled_from([0, 1, 2**64 - 1, 0x1234_5678_9abc_def0]))
def test_native_hash_equals_the_python_reference(items, seed):
    rs = records(items)
    ks = span_shape.KeySet(ENUMS, seed)
    native = span_shape.span_shapes(rs, ks).tolist()
    assert native == ref.span_shapes(decoded(rs), ENUMS, seed)


@given(st.binary(max_size=80), st.integers(0, 2**64 - 1))
def test_string_hash_equals_the_reference(data, seed):
    assert span_shape.KeySet((), seed).hash_bytes(data) == ref.Secrets(seed).str_hash(data)


def test_key_set_and_seeds():
    ks = span_shape.KeySet(["app.mode", b"x", "ünï"], 5)
    assert len(ks) == 3 and ks.seed == 5
    assert "app.mode" in ks and "ünï" in ks and b"x" in ks and "app" not in ks and "" not in ks
    rs = records([model.SpanData(1, 2, "n", attributes={"app.mode": "fast"})])
    assert span_shape.span_shapes(rs, span_shape.KeySet(ENUMS, 1))[0] != \
        span_shape.span_shapes(rs, span_shape.KeySet(ENUMS, 2))[0]
    # a plain iterable of keys: seed 0
    assert span_shape.span_shapes(rs, ENUMS).tolist() == span_shape.span_shapes(
        rs, span_shape.KeySet(ENUMS, 0)).tolist()
    assert span_shape.span_shapes(records([]), ENUMS).tolist() == []


def test_resource_keys_are_collected():
    items = [model.SpanData(1, i + 1, "n") for i in range(40)]
    parts = []
    for i, s in enumerate(items):
        s.resource_key = (i % 3 + 1) * 0x1000_0000_0001
        parts.append(encode_span(s))
    rs = RecordSet.from_parts("traces", parts, {})
    got = set()
    span_shape.span_shapes(rs, ENUMS, got)
    assert got == {0x1000_0000_0001, 0x2000_0000_0002, 0x3000_0000_0003}


# --------------------------------------------- equal hash <=> equal key

def _key_repr(engine, s):
    k = engine.span_key(s)
    # repr: NaN equals NaN (the hash canonicalises NaN: same findings), and
    # -0.0 / 0.0 or (True,) / (1,) differ (Python's == says equal; the
    # hash keeps them apart - an extra cache entry, never a wrong one)
    return None if k is None else repr(k)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(small_spans, min_size=2, max_size=30))
def test_equal_hashes_are_equal_engine_keys(engine, items):
    rs = records(items)
    hashes = span_shape.span_shapes(rs, span_shape.KeySet(engine.enums, 99)).tolist()
    keys = [_key_repr(engine, s) for s in decoded(rs)]
    by_hash, by_key = {}, {}
    for h, k in zip(hashes, keys):
        assert (h == 0) == (k is None)
        if h:
            assert by_hash.setdefault(h, k) == k          # equal hash -> equal key
            assert by_key.setdefault(k, h) == h          # equal key -> equal hash


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(spans, min_size=1, max_size=6))
def test_unhashable_shapes_are_hash_zero(engine, items):
    rs = records(items)
    hashes = span_shape.span_shapes(rs, span_shape.KeySet(engine.enums, 3)).tolist()
    for h, s in zip(hashes, decoded(rs)):
        assert (h == 0) == (engine.span_key(s) is None)


def test_an_enum_holding_a_map_has_no_shape():
    s = model.SpanData(1, 2, "n", attributes={"app.mode": {"k": 1}})
    assert span_shape.span_shapes(records([s]), ENUMS).tolist() == [0]
    assert ref.span_shape(s, ENUMS) == 0
    s = model.SpanData(1, 2, "n", attributes={"app.mode": ("a", ({"k": 1},))})
    assert span_shape.span_shapes(records([s]), ENUMS).tolist() == [0]
    # not an enum: a map is just a type
    s = model.SpanData(1, 2, "n", attributes={"app.user": {"k": 1}})
    assert span_shape.span_shapes(records([s]), ENUMS).tolist() != [0]


# ------------------------------------------------------ corrupt records

def _one(payload: bytes) -> RecordSet:
    return RecordSet("traces", payload, [0], [len(payload)], {})


@settings(max_examples=100, deadline=None)
@given(spans)
def test_every_truncation_is_hash_zero(s):
    full = encode_span(s)
    cut = [span_shape.span_shapes(_one(full[:n]), ENUMS)[0] for n in range(len(full))]
    assert not any(cut)
    h = span_shape.span_shapes(_one(full), ENUMS)[0]
    assert h == ref.span_shape(codec.decode_span(full), ENUMS)


@settings(max_examples=400, deadline=None)
@given(spans, st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4))
def test_corrupted_records_never_crash_and_agree_with_the_reference(s, flips):
    data = bytearray(encode_span(s))
    for pos, x in flips:
        data[pos % len(data)] ^= x
    data = bytes(data)
    h = span_shape.span_shapes(_one(data), ENUMS)[0]
    try:
        d = codec.decode_span(data)
    except (ValueError, UnicodeDecodeError):
        return
    if h and encode_span(d) == data:    # canonical bytes: the reference sees what the hash saw
        assert h == ref.span_shape(d, ENUMS)


def test_records_outside_the_buffer_are_hash_zero():
    full = encode_span(model.SpanData(1, 2, "n", attributes={"a": 1}))
    rs = RecordSet("traces", full, [0, 5, len(full) + 10], [len(full), len(full), 3], {})
    got = span_shape.span_shapes(rs, ENUMS).tolist()
    assert got[0] != 0 and got[1:] == [0, 0]


# -------------------------------------------------- the shape table

def test_shape_table():
    t = span_shape.ShapeTable(2)
    for i in range(1, 200):
        t.add(i * 0x9E3779B97F4A7C15 % 2**64, i)
    assert len(t) == 199
    hs = np.array([i * 0x9E3779B97F4A7C15 % 2**64 for i in range(0, 201)], np.uint64)
    got = t.lookup(hs).tolist()
    assert got[1:200] == list(range(1, 200)) and got[0] == -1 and got[200] == -1
    t.add(int(hs[5]), 77)
    assert t.get(int(hs[5])) == 77 and len(t) == 199
    with pytest.raises(ValueError):
        t.add(0, 1)
    t.clear()
    assert len(t) == 0 and t.lookup(hs[1:3]).tolist() == [-1, -1]


# ------------------------------------ the engine: native == decode-all

def _run_both(registry, batches, **cfg):
    """The batches through a semconv processor with native shapes and one
    without; what each produced."""
    outs = []
    for native in (True, False):
        tel = Telemetry()
        cap = Capture()
        actions = {"violation": "annotate", "improvement": "drop", "information": "annotate"}
        p = make(semconv.factory, {"registry": registry, "actions": actions, **cfg}, cap, telemetry=tel)
        assert (p.engine._native is not None) is True
        if not native:
            p.engine._native = None
        for b in batches:
            p.consume(b)
        got = [bytes(x) for r in cap.got for x in r.payloads()]
        fam = {name: sorted(tel.get(name).samples()) for name in ("semconv_findings", "semconv_items")}
        failed = tel.get("processor_failed_items").samples()
        outs.append((got, fam, p.stats(), failed))
    return outs


@needs_native_engine
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.one_of(dense_spans, small_spans, spans), max_size=25), min_size=1, max_size=4),
       st.sampled_from([{}, {"max_shapes": 2, "max_variants": 1}, {"max_shapes": 1}]))
def test_engine_with_native_shapes_equals_decoding_every_span(registry, batches, cfg):
    rsets = [records(b, resource_key=0xABC) for b in batches]
    native, slow = _run_both(registry, rsets, **cfg)
    assert native == slow


@needs_native_engine
def test_engine_exact_on_a_fixed_mix(registry):
    """Every combination of a few enum values, value types and events, in
    two batches (the second all cache hits)."""
    items = []
    for mode in ("fast", "slow", "turbo", 1, ("fast",), None):
        for user in ("bob", 7, ("a", 2.5), ()):
            for ev in ([], [model.SpanEvent("app.step", 1, {"app.mode": mode})]):
                for kind in (1, 2):
                    items.append(model.SpanData(1, 2, "app.work", kind=kind, events=ev,
                                                attributes={"app.mode": mode, "app.user": user}))
    b1 = records(items, resource_key=0xABC)
    b2 = records(items[::-1], resource_key=0xABC)
    native, slow = _run_both(registry, [b1, b2])
    assert native == slow
    findings = dict(native[1]["semconv_findings"])
    assert findings[("semconv", "undefined_enum_variant", "information", "span", "app.mode")] > 0
    assert findings[("semconv", "type_mismatch", "violation", "span", "app.user")] > 0


@needs_native_engine
def test_corrupt_record_fails_the_batch_as_before(registry):
    good = encode_span(model.SpanData(1, 2, "app.work", attributes={"app.mode": "fast"}))
    bad = good[:-3]
    parts = [good, bad, good]
    rs = RecordSet.from_parts("traces", parts, {})
    native, slow = _run_both(registry, [rs])
    assert native == slow
    assert native[3] and native[0] == []          # failed, nothing passed on


@needs_native_engine
def test_repeated_shapes_are_decoded_once(registry, monkeypatch):
    items = [model.SpanData(1, i + 1, "app.work", attributes={"app.mode": ("fast", "slow")[i % 2],
                                                              "app.user": f"u{i}"}) for i in range(100)]
    rs = records(items, resource_key=0xABC)
    p = make(semconv.factory, {"registry": registry}, Capture(), telemetry=Telemetry())
    calls = []
    real = codec.decode_span
    monkeypatch.setattr(codec, "decode_span", lambda b: calls.append(1) or real(b))
    p.consume(rs)
    assert len(calls) == 2                        # one per shape (two enum values)
    p.consume(rs)
    assert len(calls) == 2                        # all cached
    st_ = p.stats()
    assert st_["total_entities_by_type"]["span"] == 200
    assert st_["seen_registry_attributes"] == {"app.mode": 200, "app.user": 200}

