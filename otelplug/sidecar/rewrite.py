"""Editing records: decode to the codec's model, change it, encode again.

The codec encodes from SDK-shaped objects; ``otelplug.codec.views``
presents a model object (``otelplug.codec.model``) in that shape, so an
edited span or log is written back by the same encoder the producers use.
Processors that change attributes use ``rewrite``; selection-only
processors never come here (they use masks and keep the original bytes).
"""
from __future__ import annotations

from otelplug import codec
from otelplug.codec import views
from otelplug.codec.recordset import RecordSet


def encode_span(s) -> bytes:
    return codec.encode_span(views.span_from_model(s), s.resource_key, s.scope_key)


def encode_log(r) -> bytes:
    return codec.encode_log(views.log_from_model(r), r.dropped_attributes, r.resource_key,
                            r.scope_key)


def encode_resource(r) -> bytes:
    return codec.encode_resource(views.resource_from_model(r))


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
