"""decode_span_columns: a ring batch of span records -> numpy columns, equal
to decoding each record, on both implementations."""
from __future__ import annotations

import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from codec_strategies import codec_impls
from otelplug import codec
from otelplug.codec import types
from otelplug.ring import ChannelConsumer, Producer


def _spans(n):
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = tp.get_tracer("cols")
    for i in range(n):
        with tracer.start_as_current_span(f"op-{i % 5}-é") as parent:
            parent.set_attribute("i", i)
            with tracer.start_as_current_span("child"):
                pass
    return exporter.get_finished_spans()


@pytest.fixture
def batch():
    spans = _spans(150)
    p = Producer("cols")
    for s in spans:
        assert p.write(types.SPAN, codec.python_impl.encode_span(s, 0xABC, 0xDEF))
    p.write(3, b"not a span")                    # other record types are skipped
    p.write(types.SPAN, b"\x01" * 20)           # a span record too short: counted invalid
    c = ChannelConsumer("cols")
    try:
        [(ring, b)] = c.poll()
        yield spans, b
    finally:
        c.close()
        p.close()


@pytest.mark.parametrize("impl", codec_impls())
def test_columns_match_per_record_decode(impl, batch):
    spans, b = batch
    cols = impl.decode_span_columns(b)
    assert len(cols) == len(spans) == 300 and cols.invalid == 1
    assert sorted(cols.names) == sorted({s.name for s in spans})
    for i, s in enumerate(spans):
        ctx = s.context
        assert cols.trace_id_int(i) == ctx.trace_id
        assert cols.span_id[i] == ctx.span_id
        assert cols.parent_span_id[i] == (s.parent.span_id if s.parent else 0)
        assert cols.start_time_unix_nano[i] == s.start_time
        assert cols.end_time_unix_nano[i] == s.end_time
        assert cols.names[cols.name_id[i]] == s.name
        assert cols.kind[i] == s.kind.value + 1
        assert cols.resource_key[i] == 0xABC and cols.scope_key[i] == 0xDEF
        assert cols.attr_count[i] == len(s.attributes)
        assert bool(cols.flags[i] & types.FLAG_HAS_PARENT) == (s.parent is not None)
        assert cols.span(i).attributes == dict(s.attributes)
    assert cols.trace_id.shape == (300, 16) and cols.trace_id.dtype == np.uint8


@pytest.mark.usefixtures("cython_built")
def test_cython_columns_equal_reference(batch):
    _, b = batch
    cy = codec.cython_impl.decode_span_columns(b)
    py = codec.python_impl.decode_span_columns(b)
    for name in ("row", "trace_id", "span_id", "parent_span_id", "start_time_unix_nano",
                 "end_time_unix_nano", "resource_key", "scope_key", "flags", "kind",
                 "status_code", "attr_count", "event_count", "link_count"):
        np.testing.assert_array_equal(getattr(cy, name), getattr(py, name), err_msg=name)
        assert getattr(cy, name).dtype == getattr(py, name).dtype, name
    assert list(cy.name) == list(py.name)
    assert cy.invalid == py.invalid == 1
