"""Editing records: decode to the codec's model, change it, encode again.

The codec encodes from SDK-shaped objects; the views here present a model
object (``otelplug.codec.model``) in that shape, so an edited span, log or
metric is written back by the same encoder the producers use.  Processors
that change attributes use ``rewrite``; selection-only processors never
come here (they use masks and keep the original bytes).
"""
from __future__ import annotations

from otelplug import codec
from otelplug.codec.recordset import RecordSet


class _Attrs(dict):
    dropped = 0


def _attrs(d, dropped=0):
    a = _Attrs(d)
    a.dropped = dropped
    return a


class _Enum:
    __slots__ = ("value", "_value_")

    def __init__(self, v):
        self.value = self._value_ = v


class _TS:
    def __init__(self, header):
        self.header = header or ""

    def to_header(self):
        return self.header

    def __bool__(self):
        return bool(self.header)


class _Ctx:
    def __init__(self, trace_id, span_id, flags, remote, ts):
        self.trace_id, self.span_id, self.trace_flags = trace_id, span_id, flags
        self.is_remote, self.trace_state = remote, _TS(ts)


class _SpanView:
    def __init__(self, s):
        self.context = _Ctx(s.trace_id, s.span_id, s.trace_flags, s.is_remote, s.trace_state)
        self.parent = (_Ctx(s.trace_id, s.parent_span_id, 0, s.parent_is_remote, "")
                       if s.parent_span_id is not None else None)
        self.name = s.name
        self.kind = _Enum(s.kind - 1)
        self.start_time, self.end_time = s.start_time_unix_nano, s.end_time_unix_nano
        self.attributes = _attrs(s.attributes)
        self.dropped_attributes = s.dropped_attributes
        self.events = [type("E", (), {"name": e.name, "timestamp": e.time_unix_nano,
                                      "attributes": _attrs(e.attributes, e.dropped_attributes)})
                       for e in s.events]
        self.dropped_events = s.dropped_events
        self.links = [type("L", (), {"context": _Ctx(lk.trace_id, lk.span_id, lk.trace_flags,
                                                     lk.is_remote, lk.trace_state),
                                     "attributes": _attrs(lk.attributes, lk.dropped_attributes)})
                      for lk in s.links]
        self.dropped_links = s.dropped_links
        self.status = type("S", (), {"status_code": _Enum(s.status_code),
                                     "description": s.status_description})


class _LogView:
    def __init__(self, r):
        self.trace_id, self.span_id, self.trace_flags = r.trace_id, r.span_id, r.trace_flags
        self.timestamp, self.observed_timestamp = r.time_unix_nano, r.observed_time_unix_nano
        self.severity_number = _Enum(r.severity_number) if r.severity_number is not None else None
        self.severity_text, self.event_name, self.body = r.severity_text, r.event_name, r.body
        self.attributes = r.attributes


class _ResourceView:
    def __init__(self, r):
        self.attributes = _attrs(r.attributes, r.dropped_attributes)
        self.schema_url = r.schema_url or ""


def encode_span(s) -> bytes:
    return codec.encode_span(_SpanView(s), s.resource_key, s.scope_key)


def encode_log(r) -> bytes:
    return codec.encode_log(_LogView(r), r.dropped_attributes, r.resource_key, r.scope_key)


def encode_resource(r) -> bytes:
    return codec.encode_resource(_ResourceView(r))


DECODE = {"traces": lambda p: codec.decode_span(p), "logs": lambda p: codec.decode_log(p)}
ENCODE = {"traces": encode_span, "logs": encode_log}


def rewrite(records: RecordSet, edit, defs=None) -> RecordSet:
    """A new RecordSet whose records are ``edit(item)`` applied to each
    decoded span or log (``edit`` changes the item in place).  Same acks."""
    decode, encode = DECODE[records.signal], ENCODE[records.signal]
    parts = []
    for payload in records.payloads():
        item = decode(payload)
        edit(item)
        parts.append(encode(item))
    return RecordSet.from_parts(records.signal, parts, records.defs if defs is None else defs,
                                records.acks, records.items)
