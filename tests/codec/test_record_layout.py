"""The record prefix offsets compiled from cython_ext/record_layout.h and the
names in otelplug/codec/types.py must describe the same bytes."""
import pytest

from otelplug import codec
from otelplug.codec import types


@pytest.mark.skipif(codec.cython_impl is None, reason="Cython extension not built")
def test_record_layout_header_matches_types_module():
    from otelplug._ext.definition_codec import record_layout_offsets
    compiled = record_layout_offsets()
    python = {name: value for name, value in vars(types).items()
              if name.endswith(("_AT", "_PREFIX")) and name.split("_")[0] in
              ("SPAN", "LOG", "METRIC")}
    assert compiled == python


def test_prefix_offsets_read_back_an_encoded_span():
    """Each named span offset finds the field the encoder wrote there."""
    import struct
    from otelplug import codec
    from otelplug.codec import model, views

    span = model.SpanData(
        trace_id=0x0102030405060708090A0B0C0D0E0F10, span_id=0x1112131415161718, name="op",
        parent_span_id=0x2122232425262728, kind=3, start_time_unix_nano=111,
        end_time_unix_nano=222, status_code=2, resource_key=333, scope_key=444,
        attributes={"a": 1, "b": 2}, dropped_attributes=5, dropped_events=6, dropped_links=7)
    rec = codec.encode_span(views.span_from_model(span), span.resource_key, span.scope_key)
    u32 = lambda at: struct.unpack_from("<I", rec, at)[0]  # noqa: E731
    u64 = lambda at: struct.unpack_from("<Q", rec, at)[0]  # noqa: E731
    assert rec[types.SPAN_SPAN_ID_AT:types.SPAN_SPAN_ID_AT + 8] == bytes(range(0x11, 0x19))
    assert (rec[types.SPAN_PARENT_SPAN_ID_AT:types.SPAN_PARENT_SPAN_ID_AT + 8]
            == bytes(range(0x21, 0x29)))
    assert (u64(types.SPAN_START_AT), u64(types.SPAN_END_AT)) == (111, 222)
    assert (u64(types.SPAN_RESOURCE_KEY_AT), u64(types.SPAN_SCOPE_KEY_AT)) == (333, 444)
    assert (rec[types.SPAN_KIND_AT], rec[types.SPAN_STATUS_AT]) == (3, 2)
    assert rec[types.SPAN_VERSION_AT] == types.FORMAT_VERSION
    assert u32(types.SPAN_NAME_LEN_AT) == 2
    assert rec[types.SPAN_PREFIX:types.SPAN_PREFIX + 2] == b"op"
    assert [u32(a) for a in (types.SPAN_DROPPED_ATTRIBUTES_AT, types.SPAN_DROPPED_EVENTS_AT,
                             types.SPAN_DROPPED_LINKS_AT, types.SPAN_ATTR_COUNT_AT)] == [5, 6, 7, 2]
