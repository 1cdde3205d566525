"""Span records: SDK ReadableSpan -> record -> model, every field equal, on
both codecs; and both codecs write the same bytes."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from codec_strategies import LONG, codec_impls, readable_spans, resources, scopes
from otelplug import codec
from otelplug.codec import from_sdk

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def same(a, b) -> bool:
    """Equality that also holds for NaN and tells 0.0 from -0.0, 1 from 1.0
    and True from 1: repr of the models."""
    return repr(a) == repr(b)


@pytest.mark.parametrize("impl", codec_impls())
@SETTINGS
@given(span=readable_spans(), rkey=st.integers(0, (1 << 64) - 1), skey=st.integers(0, (1 << 64) - 1))
def test_span_round_trip(impl, span, rkey, skey):
    rec = impl.encode_span(span, rkey, skey)
    got = impl.decode_span(rec)
    assert same(got, from_sdk.span_from_sdk(span, rkey, skey))


@pytest.mark.usefixtures("cython_built")
@SETTINGS
@given(span=readable_spans())
def test_span_codecs_write_identical_bytes(span):
    cy = codec.cython_impl.encode_span(span, 7, 9)
    py = codec.python_impl.encode_span(span, 7, 9)
    assert cy == py
    # and each decodes the other's records alike
    assert same(codec.cython_impl.decode_span(py), codec.python_impl.decode_span(cy))


@pytest.mark.parametrize("impl", codec_impls())
@SETTINGS
@given(resource=resources, scope=scopes, pid=st.one_of(st.none(), st.integers(1, 1 << 22)))
def test_definitions_round_trip(impl, resource, scope, pid):
    r = impl.encode_resource(resource, pid)
    assert same(impl.decode_definition(r), from_sdk.resource_from_sdk(resource, pid))
    s = impl.encode_scope(scope)
    assert same(impl.decode_definition(s), from_sdk.scope_from_sdk(scope))
    assert impl.definition_key(r) == codec.python_impl.definition_key(r) != 0
    if codec.cython_impl is not None:
        assert r == codec.python_impl.encode_resource(resource, pid)
        assert s == codec.python_impl.encode_scope(scope)


def _sdk_spans():
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = tp.get_tracer("lib", "2.0", schema_url="https://opentelemetry.io/schemas/1.26.0",
                           attributes={"scope.attr": True})
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("nan", math.nan)
        parent.set_attribute("inf", (math.inf, -math.inf, 0.0, -0.0))
        parent.set_attribute("long", LONG)
        parent.set_attribute("empty", "")
        parent.set_attribute("empty.seq", ())
        with tracer.start_as_current_span(
                "child ✓", links=[Link(parent.get_span_context(), {"l": 1})]) as child:
            child.add_event("exception", {"exception.message": "boom"})
            child.set_status(Status(StatusCode.ERROR, "bad ✗"))
        try:
            with tracer.start_as_current_span("raises"):
                raise ValueError("x")
        except ValueError:
            pass
    return exporter.get_finished_spans()


@pytest.mark.parametrize("impl", codec_impls())
def test_real_sdk_spans_round_trip(impl):
    spans = _sdk_spans()
    assert len(spans) == 3
    for span in spans:
        got = impl.decode_span(impl.encode_span(span, 1, 2))
        assert same(got, from_sdk.span_from_sdk(span, 1, 2))
    child = impl.decode_span(impl.encode_span(spans[0], 1, 2))
    assert child.name == "child ✓" and child.status_code == 2
    assert child.status_description == "bad ✗"
    assert child.parent_span_id == spans[2].context.span_id
    assert child.links[0].span_id == spans[2].context.span_id
    assert child.links[0].attributes == {"l": 1}
    raised = impl.decode_span(impl.encode_span(spans[1], 1, 2))
    assert raised.events[0].name == "exception"
    assert raised.events[0].attributes["exception.type"] == "ValueError"
    parent = impl.decode_span(impl.encode_span(spans[2], 1, 2))
    assert math.isnan(parent.attributes["nan"]) and parent.parent_span_id is None
    assert parent.kind == 2  # OTLP SERVER
    assert repr(parent.attributes["inf"]) == "(inf, -inf, 0.0, -0.0)"
    assert parent.attributes["long"] == LONG and parent.attributes["empty"] == ""


@pytest.mark.parametrize("impl", codec_impls())
def test_unencodable_values_raise_cleanly(impl):
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext
    ctx = SpanContext(1, 2, False)
    for bad in (1 << 64, object(), {1: "non-str key"}):
        span = ReadableSpan("x", ctx, attributes={"a": bad})
        with pytest.raises((OverflowError, TypeError)):
            impl.encode_span(span, 0, 0)
