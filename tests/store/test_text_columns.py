"""The store's text columns written from ring bytes by the extension
(cython_ext/store_json.pyx) equal the reference (decode, then json.dumps)
for any span the codec can carry: nested values, bytes, non-finite floats,
control characters, lone surrogates, events and links."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelplug import codec
from otelplug.store import rows
from tests.codec.codec_strategies import readable_spans

from otelplug.codec.recordset import RecordSet

from tests.requirements import require_native

from .data import span_records
from .data import spans as make_spans

require_native("otelplug._ext.store_json")
pytestmark = pytest.mark.skipif(rows._fast_texts is None, reason="OTELPLUG_PURE_PYTHON=1 selects the reference")


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(readable_spans(), min_size=1, max_size=4))
def test_extension_writes_what_the_reference_writes(spans):
    rs = span_records(spans)
    cols = codec.decode_span_columns(rs)
    fast = rows.span_texts(rs, cols)
    ref = rows.span_texts(rs, cols, fast=False)
    for f, r in zip(fast, ref):
        assert list(f) == list(r)
    for col in fast[:3]:          # and it is JSON (no NaN, no raw control characters)
        for text in col:
            json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_a_corrupt_record_is_an_error():
    rs = span_records(make_spans([dict(name="x", start=1, duration=1, attributes={"a": "b" * 50})]))
    cut = RecordSet(rs.signal, rs.buf, rs.offsets, rs.lengths - 30, rs.defs)
    cols = codec.decode_span_columns(cut)
    with pytest.raises(ValueError, match="corrupt|truncated"):
        rows.span_texts(cut, cols)
