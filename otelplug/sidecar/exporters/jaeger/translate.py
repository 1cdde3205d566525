"""Spans to Jaeger Thrift structs, with the mapping the Collector's
Jaeger translator applies (pkg/translator/jaeger, traces_to_jaegerproto.go,
then Jaeger's own model-to-thrift conversion):

- Process: ``service.name`` of the resource (``OTLPResourceNoServiceName``
  for a resource without attributes); the other resource attributes as
  process tags;
- tags by type: string, bool, int (LONG), double, bytes (BINARY); arrays
  and maps as JSON strings;
- span tags, in order: ``otel.scope.name`` / ``otel.scope.version``, the
  attributes, ``span.kind`` (client/server/producer/consumer/internal),
  ``otel.status_code`` (OK/ERROR), ``error=true`` on errors,
  ``otel.status_description``, ``w3c.tracestate``;
- events as logs: the name as the ``event`` field (unless an attribute is
  already called so), then the attributes;
- references: CHILD_OF the parent first, links as FOLLOWS_FROM (CHILD_OF
  when the link says ``opentracing.ref_type=child_of``; a link to the
  parent only sets the parent reference's type);
- trace id split into high/low i64, ids as signed i64, times in
  microseconds, flags 1 when sampled.
"""
from __future__ import annotations

import base64
import json

import numpy as np

from otelplug import codec

from .thrift import BOOL, DOUBLE, I32, I64, LIST, STRING, STRUCT, signed64

# jaeger.thrift enums
TAG_STRING, TAG_DOUBLE, TAG_BOOL, TAG_LONG, TAG_BINARY = range(5)
CHILD_OF, FOLLOWS_FROM = 0, 1

NO_SERVICE_NAME = "OTLPResourceNoServiceName"
_KIND = {2: "server", 3: "client", 4: "producer", 5: "consumer", 1: "internal"}
_STATUS = {1: "OK", 2: "ERROR"}
_M64 = (1 << 64) - 1


def _go_float(f: float) -> str:
    """A float as Go's encoding/json writes it: shortest digits, no ".0"
    on integral values, exponent form only below 1e-6 or from 1e21 on
    (with a one-digit exponent written as such: 1e-7, not 1e-07)."""
    if f != f or f in (float("inf"), float("-inf")):
        return json.dumps(f)          # Go refuses these; keep a readable value
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        mantissa, _, exp = repr(f).partition("e")
        sign, digits = (exp[0], exp[1:]) if exp[0] in "+-" else ("+", exp)
        return f"{mantissa.removesuffix('.0')}e{sign}{digits.lstrip('0') or '0'}"
    return np.format_float_positional(f, trim="-")


def _go_json(v) -> str:
    """JSON as pcommon's ``AsString`` makes it for arrays and maps (Go's
    encoding/json): what Jaeger and the Collector show for such tags, so
    the Thrift paths read back like OTLP ones.  Map keys sorted, ``<>&``
    and U+2028/U+2029 escaped, bytes as base64."""
    if isinstance(v, bool) or v is None or isinstance(v, int):
        return json.dumps(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, bytes):
        v = base64.b64encode(v).decode()
    if isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False)
        for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                        ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
            s = s.replace(ch, esc)
        return s
    if isinstance(v, dict):
        return "{" + ",".join(f"{_go_json(str(k))}:{_go_json(x)}" for k, x in sorted(v.items())) + "}"
    return "[" + ",".join(_go_json(x) for x in v) + "]"


def tag(key: str, v):
    """One ``jaeger.Tag`` struct."""
    if isinstance(v, bool):
        return ((1, STRING, key), (2, I32, TAG_BOOL), (5, BOOL, v))
    if isinstance(v, int):
        return ((1, STRING, key), (2, I32, TAG_LONG), (6, I64, v))
    if isinstance(v, float):
        return ((1, STRING, key), (2, I32, TAG_DOUBLE), (4, DOUBLE, v))
    if isinstance(v, bytes):
        return ((1, STRING, key), (2, I32, TAG_BINARY), (7, STRING, v))
    if isinstance(v, str):
        s = v
    elif v is None:
        s = ""
    else:   # arrays and maps: JSON, as pcommon's AsString
        s = _go_json(v)
    return ((1, STRING, key), (2, I32, TAG_STRING), (3, STRING, s))


def _str_tag(key, s):
    return ((1, STRING, key), (2, I32, TAG_STRING), (3, STRING, s))


def process(resource_attrs: dict | None):
    """The ``jaeger.Process`` struct of a resource."""
    attrs = resource_attrs or {}
    if not attrs:
        return ((1, STRING, NO_SERVICE_NAME),)
    name = attrs.get("service.name", "")
    tags = [tag(k, v) for k, v in attrs.items() if k != "service.name"]
    return ((1, STRING, name if isinstance(name, str) else str(name)),
            (2, LIST, (STRUCT, tags) if tags else None))


def _trace_halves(trace_id: int):
    return signed64(trace_id & _M64), signed64(trace_id >> 64)


def span(s, scope=None):
    """The ``jaeger.Span`` struct of a decoded span (``codec.model.SpanData``)."""
    low, high = _trace_halves(s.trace_id)
    refs = []
    parent = s.parent_span_id or 0
    if parent:
        refs.append([CHILD_OF, low, high, signed64(parent)])
    for lk in s.links:
        rt = CHILD_OF if lk.attributes.get("opentracing.ref_type") == "child_of" else FOLLOWS_FROM
        l_low, l_high = _trace_halves(lk.trace_id)
        if parent and lk.trace_id == s.trace_id and lk.span_id == parent:
            refs[0][0] = rt
            continue
        refs.append([rt, l_low, l_high, signed64(lk.span_id)])
    tags = []
    if scope is not None:
        if scope.name:
            tags.append(_str_tag("otel.scope.name", scope.name))
        if scope.version:
            tags.append(_str_tag("otel.scope.version", scope.version))
    tags += [tag(k, v) for k, v in s.attributes.items()]
    kind = _KIND.get(s.kind)
    if kind:
        tags.append(_str_tag("span.kind", kind))
    status = _STATUS.get(s.status_code)
    if status:
        tags.append(_str_tag("otel.status_code", status))
    if s.status_code == 2:
        tags.append(((1, STRING, "error"), (2, I32, TAG_BOOL), (5, BOOL, True)))
    if s.status_description:
        tags.append(_str_tag("otel.status_description", s.status_description))
    if s.trace_state:
        tags.append(_str_tag("w3c.tracestate", s.trace_state))
    logs = []
    for e in s.events:
        fields = []
        if e.name and "event" not in e.attributes:
            fields.append(_str_tag("event", e.name))
        fields += [tag(k, v) for k, v in e.attributes.items()]
        logs.append(((1, I64, e.time_unix_nano // 1000), (2, LIST, (STRUCT, fields))))
    start = s.start_time_unix_nano
    return (
        (1, I64, low), (2, I64, high), (3, I64, signed64(s.span_id)),
        (4, I64, signed64(parent)), (5, STRING, s.name),
        (6, LIST, (STRUCT, [((1, I32, r[0]), (2, I64, r[1]), (3, I64, r[2]), (4, I64, r[3]))
                            for r in refs]) if refs else None),
        (7, I32, s.trace_flags & 0x01),
        (8, I64, start // 1000),
        (9, I64, max(0, s.end_time_unix_nano - start) // 1000),
        (10, LIST, (STRUCT, tags) if tags else None),
        (11, LIST, (STRUCT, logs) if logs else None),
    )


def batches(records):
    """``[(process struct, [span struct, ...])]``, one per resource."""
    resources: dict[int, list] = {}
    scopes: dict[int, object] = {}
    defs = records.defs
    for payload in records.payloads():
        s = codec.decode_span(payload)
        group = resources.get(s.resource_key)
        if group is None:
            rp = defs.get(s.resource_key)
            attrs = codec.decode_definition(rp).attributes if rp is not None else {}
            group = resources[s.resource_key] = [process(attrs), []]
        sk = s.scope_key
        if sk not in scopes:
            sp = defs.get(sk) if sk else None
            scopes[sk] = codec.decode_definition(sp) if sp is not None else None
        group[1].append(span(s, scopes[sk]))
    return [tuple(g) for g in resources.values()]


def batch_struct(proc, spans, seq_no=None):
    """A ``jaeger.Batch``; ``spans`` are structs or already encoded bytes."""
    return ((1, STRUCT, proc), (2, LIST, (STRUCT, list(spans))),
            (3, I64, seq_no))
