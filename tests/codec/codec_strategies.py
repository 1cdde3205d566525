"""Hypothesis strategies for SDK telemetry objects, and helpers shared by the
codec tests."""
from __future__ import annotations

import pytest
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from otelplug import codec
from tests.requirements import missing, on_ci


def codec_impls():
    out = [pytest.param(codec.python_impl, id="pycodec")]
    if codec.cython_impl is not None:
        out.insert(0, pytest.param(codec.cython_impl, id="cycodec"))
    else:
        if on_ci():     # a collection error: the run fails, naming what is missing
            missing("the Cython codec", "python setup.py build_ext --inplace")
        out.insert(0, pytest.param(None, id="cycodec", marks=pytest.mark.skip(
            reason="Cython extension not built")))
    return out


LONG = "é🙂x" * 30000          # ~ 210 kB of UTF-8, non-ASCII
surrogates = st.characters(categories=["Cs"])
text = st.one_of(
    st.text(max_size=20),
    st.text(st.one_of(st.characters(), surrogates), max_size=10),
    st.just(""),
    st.integers(30000, 30001).map(lambda n: "é🙂x" * n),   # ~200 kB, non-ASCII
)
keys = st.text(max_size=12)
int64 = st.integers(-(1 << 63), (1 << 63) - 1)
floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(text, st.booleans(), int64, floats)


# span attribute values: scalars and homogeneous sequences (optionally with None)
attr_values = st.one_of(
    scalars,
    *[st.lists(e, max_size=8).map(tuple) for e in (text, st.booleans(), int64, floats)],
    *[st.lists(st.one_of(e, st.none()), max_size=5).map(tuple) for e in (text, int64)],
)
def _large(n):
    return {f"attr.{i}.é": ("v" * i if i % 3 == 0 else i if i % 3 == 1 else (float(i), -0.0))
            for i in range(n)}


attributes = st.one_of(
    st.dictionaries(keys, attr_values, max_size=10),
    st.dictionaries(keys, attr_values, max_size=10),
    st.integers(100, 400).map(_large),   # large attribute sets, cheap to generate
)

# AnyValue (log bodies and log attributes): anything, nested
any_values = st.recursive(
    st.one_of(st.none(), scalars, st.binary(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=5).map(tuple),
                            st.dictionaries(keys, inner, max_size=5)),
    max_leaves=20,
)

trace_ids = st.integers(1, (1 << 128) - 1)
span_ids = st.integers(1, (1 << 64) - 1)
times = st.integers(0, (1 << 64) - 1)
trace_states = st.sampled_from([
    TraceState(), TraceState([("vendor", "abc")]),
    TraceState([("a", "1"), ("b@x", "two"), ("rojo", "00f067aa0ba902b7")]),
])


@st.composite
def span_contexts(draw, is_remote=None):
    return SpanContext(draw(trace_ids), draw(span_ids),
                       draw(st.booleans()) if is_remote is None else is_remote,
                       TraceFlags(draw(st.integers(0, 255))), draw(trace_states))


@st.composite
def bounded_attrs(draw, values=attr_values):
    """Plain dicts, or the SDK's BoundedAttributes with some dropped."""
    d = draw(st.one_of(st.dictionaries(keys, values, max_size=6), st.just({})))
    if draw(st.booleans()):
        return d
    limit = draw(st.integers(0, max(len(d), 1)))
    return BoundedAttributes(maxlen=limit, attributes=d, immutable=False)


resources = st.builds(lambda a, s: Resource(a, s), st.dictionaries(keys, attr_values, max_size=6),
                      st.one_of(st.none(), st.just(""), text))
scopes = st.builds(
    lambda n, v, s, a: InstrumentationScope(n, v, s, a),
    text, st.one_of(st.none(), text), st.one_of(st.none(), text),
    st.one_of(st.none(), st.dictionaries(keys, attr_values, max_size=4)))


@st.composite
def readable_spans(draw):
    ctx = draw(span_contexts())
    parent = draw(st.one_of(st.none(), span_contexts()))
    events = [Event(draw(text), draw(bounded_attrs()), draw(times))
              for _ in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        bl = BoundedList(draw(st.integers(0, 3)))
        bl.extend(events)
        events = bl
    links = [Link(draw(span_contexts()), draw(bounded_attrs()))
             for _ in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        bl = BoundedList(draw(st.integers(0, 3)))
        bl.extend(links)
        links = bl
    code = draw(st.sampled_from(list(StatusCode)))
    status = Status(code, draw(st.one_of(st.none(), text)) if code is StatusCode.ERROR else None)
    a = draw(attributes)
    if draw(st.booleans()):
        a = BoundedAttributes(maxlen=draw(st.integers(0, len(a) + 1)), attributes=a, immutable=False)
    return ReadableSpan(
        name=draw(text), context=ctx, parent=parent, resource=draw(resources), attributes=a,
        events=events, links=links, kind=draw(st.sampled_from(list(SpanKind))), status=status,
        start_time=draw(times), end_time=draw(times),
        instrumentation_scope=draw(st.one_of(st.none(), scopes)))
