"""Sidecar batches (RecordSet) -> store rows, as columns.

Spans: the fixed fields (ids, times, keys, kind, status, name) come as numpy
columns from the codec's batch decoder; only the variable part (attributes,
events, links, trace state, status message) is decoded per record, and
resource / scope definitions once per batch.  The result is a dict of
equal-length arrays per table, which DuckDB ingests in one statement and
PostgreSQL in one COPY.
"""
from __future__ import annotations

import base64
import binascii
import json
import math

import numpy as np

from otelplug import codec, implementation
from otelplug.codec import model
from otelplug.codec import types as wire

from . import schema

# the ClickHouse exporter's spellings (the proto enum names)
SPAN_KIND = np.array(["SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                      "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"], dtype=object)
STATUS_CODE = np.array(["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"], dtype=object)
STATUS_BY_WORD = {"unset": STATUS_CODE[0], "ok": STATUS_CODE[1], "error": STATUS_CODE[2]}


def _json_default(v):
    # attribute values JSON has no type for: bytes as base64, as OTLP-JSON does
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    raise TypeError(f"{type(v).__name__} is not an attribute value")


def _finite(v):
    """JSON has no NaN or infinities: spell them as strings, as OTLP-JSON does."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def to_json(value) -> str:
    if not value:
        return "{}" if isinstance(value, dict) or value is None else "[]"
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=_json_default)
    except ValueError:      # a NaN or infinity somewhere
        return json.dumps(_finite(value), separators=(",", ":"), ensure_ascii=False,
                          default=_json_default)


if implementation.use_compiled():
    from otelplug._ext.store_json import span_text_columns as _fast_texts
else:   # the reference below (otelplug.implementation says why)
    _fast_texts = None


def hex_ids(raw: np.ndarray, width: int) -> np.ndarray:
    """Lower-case hex strings of fixed-width big-endian ids (one hexlify for
    the whole column, then slicing), as objects."""
    if len(raw) == 0:
        return np.empty(0, dtype=object)
    h = binascii.hexlify(np.ascontiguousarray(raw).tobytes()).decode("ascii")
    n = 2 * width
    return np.array([h[i:i + n] for i in range(0, len(h), n)], dtype=object)


def _id_hex(v: int | None, width: int) -> str:
    return format(v, f"0{2 * width}x") if v else ""


def _ns(values) -> np.ndarray:
    return np.asarray(values, dtype=np.uint64).astype(np.int64).view("datetime64[ns]")


class _Defs:
    """Resource and scope definitions of a batch, decoded once each."""

    def __init__(self, defs):
        self.raw = defs
        self.cache = {}

    def get(self, key: int):
        key = int(key)
        d = self.cache.get(key)
        if d is None:
            payload = self.raw.get(key) if key else None
            d = codec.decode_definition(payload) if payload is not None else None
            self.cache[key] = d
        return d

    def resource(self, key):
        r = self.get(key)
        r = r if isinstance(r, model.Resource) else model.Resource()
        return (str(r.attributes.get("service.name", "")), to_json(r.attributes),
                r.schema_url or "")

    def scope(self, key):
        s = self.get(key)
        s = s if isinstance(s, model.Scope) else model.Scope()
        return (s.name or "", s.version or "", to_json(s.attributes), s.schema_url or "",
                s.dropped_attributes)


def _per_key(keys: np.ndarray, lookup, width: int) -> list[np.ndarray]:
    """Columns derived from a definition key, computed once per distinct key
    and spread to rows with numpy indexing."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    table = [lookup(k) for k in uniq]
    return [np.array([t[j] for t in table], dtype=object)[inverse] if len(keys) else
            np.empty(0, dtype=object) for j in range(width)]


def _span_texts_reference(s) -> tuple:
    """SpanAttributes, Events, Links (JSON), TraceState, StatusMessage of a
    decoded span: the reference for cython_ext/store_json.pyx."""
    events = "[]" if not s.events else to_json(
        [{"Timestamp": e.time_unix_nano, "Name": e.name, "Attributes": e.attributes}
         for e in s.events])
    links = "[]" if not s.links else to_json(
        [{"TraceId": _id_hex(lk.trace_id, 16), "SpanId": _id_hex(lk.span_id, 8),
          "TraceState": lk.trace_state or "", "Attributes": lk.attributes} for lk in s.links])
    return (to_json(s.attributes), events, links, s.trace_state or "", s.status_description or "")


def span_texts(records, cols, fast=True) -> list[np.ndarray]:
    """The five text columns of the spans in ``cols``: written from the
    record bytes by the extension, or by the reference per span (for every
    span without the extension, and for the rare span whose strings are not
    valid UTF-8)."""
    n = len(cols)
    if fast and _fast_texts is not None:
        out = list(_fast_texts(records, cols.row))
    else:
        out = [np.full(n, None, dtype=object) for _ in range(5)]
    for j in range(5):
        for i in np.flatnonzero(np.equal(out[j], None)):
            for k, v in enumerate(_span_texts_reference(cols.span(int(i)))):
                out[k][i] = v
    return out


def span_rows(records) -> dict:
    cols = codec.decode_span_columns(records)
    n = len(cols)
    defs = _Defs(records.defs)
    attrs, events, links, states, messages = span_texts(records, cols)
    service, res_attrs, _ = _per_key(cols.resource_key, defs.resource, 3)
    scope_name, scope_version = _per_key(cols.scope_key, defs.scope, 2)
    start = cols.start_time_unix_nano
    end = cols.end_time_unix_nano
    parent = hex_ids(cols.parent_span_id.astype(">u8"), 8)
    if n:
        parent[cols.parent_span_id == 0] = ""
    names = np.array(cols.names, dtype=object)
    return {schema.TRACES.name: {
        "Timestamp": _ns(start),
        "TraceId": hex_ids(cols.trace_id, 16),
        "SpanId": hex_ids(cols.span_id.astype(">u8"), 8),
        "ParentSpanId": parent,
        "TraceState": states,
        "SpanName": names[cols.name_id] if n else np.empty(0, dtype=object),
        "SpanKind": SPAN_KIND[np.minimum(cols.kind, len(SPAN_KIND) - 1)],
        "ServiceName": service,
        "ResourceAttributes": res_attrs,
        "ScopeName": scope_name,
        "ScopeVersion": scope_version,
        "SpanAttributes": attrs,
        "Duration": np.where(end >= start, end - start, 0).astype(np.int64),
        "StatusCode": STATUS_CODE[np.minimum(cols.status_code, len(STATUS_CODE) - 1)],
        "StatusMessage": messages,
        "Events": events,
        "Links": links,
    }}


def _body(v) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def log_rows(records) -> dict:
    from .trace_analysis import EVENT, analysis_row
    defs = _Defs(records.defs)
    rows, analyses = [], []
    for payload in records.payloads():
        r = codec.decode_log(payload)
        if r.event_name == EVENT:       # a trace analysis has a table of its own
            analyses.append(analysis_row(r))
            continue
        service, res_attrs, res_url = defs.resource(r.resource_key)
        sname, sversion, sattrs, surl, _ = defs.scope(r.scope_key)
        rows.append((r.time_unix_nano or r.observed_time_unix_nano, _id_hex(r.trace_id, 16),
                     _id_hex(r.span_id, 8), (r.trace_flags or 0) & 0xFF, r.severity_text or "",
                     r.severity_number or 0, service, _body(r.body), res_url, res_attrs, surl,
                     sname, sversion, sattrs, to_json(r.attributes), r.event_name or ""))
    out = {schema.LOGS.name: _columns(schema.LOGS, rows)}
    if analyses:
        out[schema.TRACE_ANALYSIS.name] = _columns(schema.TRACE_ANALYSIS, analyses)
    return out


def _columns(table: schema.Table, rows: list[tuple]) -> dict:
    out = {}
    for j, (name, typ) in enumerate(table.columns):
        vals = [r[j] for r in rows]
        if typ == "ts":
            out[name] = _ns(vals)
        elif typ in ("u8", "u32", "i32", "i64", "u64"):
            out[name] = np.array(vals, dtype=np.int64)
        elif typ == "f64":
            out[name] = np.array(vals, dtype=np.float64)
        elif typ == "bool":
            out[name] = np.array(vals, dtype=bool)
        else:
            out[name] = np.array(vals, dtype=object) if vals else np.empty(0, dtype=object)
            if typ.endswith("[]"):   # lists stay Python lists in the object array
                arr = np.empty(len(vals), dtype=object)
                arr[:] = [list(v) for v in vals]
                out[name] = arr
    return out


def _exemplars(xs) -> str:
    return "[]" if not xs else to_json([
        {"FilteredAttributes": x.filtered_attributes, "TimeUnix": x.time_unix_nano,
         "Value": float(x.value), "SpanId": _id_hex(x.span_id, 8),
         "TraceId": _id_hex(x.trace_id, 16)} for x in xs])


_METRIC_TABLE = {wire.M_GAUGE: schema.GAUGE, wire.M_SUM: schema.SUM,
                 wire.M_HISTOGRAM: schema.HISTOGRAM, wire.M_EXP_HISTOGRAM: schema.EXP_HISTOGRAM}


def metric_rows(records) -> dict:
    defs = _Defs(records.defs)
    by_table: dict[str, list] = {}
    for payload in records.payloads():
        m = codec.decode_metric(payload)
        table = _METRIC_TABLE.get(m.kind)
        if table is None:
            continue
        service, res_attrs, res_url = defs.resource(m.resource_key)
        sname, sversion, sattrs, surl, sdropped = defs.scope(m.scope_key)
        head = (res_attrs, m.resource_schema_url or res_url, sname, sversion, sattrs, sdropped,
                m.scope_schema_url or surl, service, m.name, m.description or "", m.unit or "")
        rows = by_table.setdefault(table.name, [])
        for p in m.points:
            common = head + (to_json(p.attributes), p.start_time_unix_nano or 0, p.time_unix_nano)
            if table is schema.GAUGE:
                rows.append(common + (float(p.value), _exemplars(p.exemplars), 0))
            elif table is schema.SUM:
                rows.append(common + (float(p.value), _exemplars(p.exemplars), 0, m.temporality,
                                      m.is_monotonic))
            elif table is schema.HISTOGRAM:
                rows.append(common + (p.count, float(p.sum), p.bucket_counts, p.explicit_bounds,
                                      _exemplars(p.exemplars), 0, float(p.min), float(p.max),
                                      m.temporality))
            else:
                rows.append(common + (p.count, float(p.sum), p.scale, p.zero_count,
                                      p.positive_offset, p.positive_bucket_counts,
                                      p.negative_offset, p.negative_bucket_counts,
                                      _exemplars(p.exemplars), p.flags, float(p.min),
                                      float(p.max), m.temporality))
    return {name: _columns(schema.BY_NAME[name], rows) for name, rows in by_table.items()}


ROWS_FOR = {"traces": span_rows, "logs": log_rows, "metrics": metric_rows}


def rows_for(records) -> dict:
    """{table name: {column: array}} for a RecordSet of any signal."""
    return ROWS_FOR[records.signal](records)
