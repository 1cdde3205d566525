"""OTLP Export*ServiceRequest -> RecordSet, so OTLP input runs through the
same pipelines as ring records.

The codec's encoders read SDK-shaped objects (``span.context.trace_id``,
``span.status.status_code.value``, ``attributes.dropped`` ...).  The small
view classes here present an OTLP message in that shape without building
SDK objects, so every OTLP field (dropped counts, remote flags, trace
state as sent) reaches the record unchanged.
"""
from __future__ import annotations

from otelplug import codec
from otelplug.codec.recordset import RecordSet

from .values import from_any, from_kv


class InvalidRequest(ValueError):
    """An OTLP payload that is well-formed protobuf but not valid OTLP."""


class Unsupported(InvalidRequest):
    """Valid OTLP that otelplug's records cannot carry (summary metrics)."""


class _Attrs(dict):
    """An attribute dict that also carries OTLP's dropped count."""
    dropped = 0


def _attrs(kvs, dropped: int = 0) -> _Attrs:
    a = _Attrs(from_kv(kvs))
    a.dropped = dropped
    return a


class _TraceState:
    def __init__(self, header: str):
        self.header = header

    def to_header(self) -> str:
        return self.header

    def __bool__(self) -> bool:
        return bool(self.header)


class _Ctx:
    __slots__ = ("trace_id", "span_id", "trace_flags", "is_remote", "trace_state")

    def __init__(self, trace_id, span_id, trace_flags, is_remote, trace_state):
        self.trace_id, self.span_id = trace_id, span_id
        self.trace_flags, self.is_remote, self.trace_state = trace_flags, is_remote, trace_state


class _Enum:
    """An enum member as the codec reads it (``value``; the Cython codec
    reads ``_value_`` directly, skipping the enum property)."""
    __slots__ = ("value", "_value_")

    def __init__(self, value):
        self.value = self._value_ = value


class _Status:
    def __init__(self, code, description):
        self.status_code = _Enum(code)
        self.description = description or None


class _Event:
    def __init__(self, e):
        self.name, self.timestamp = e.name, e.time_unix_nano
        self.attributes = _attrs(e.attributes, e.dropped_attributes_count)


class _Link:
    def __init__(self, lk):
        f = lk.flags
        self.context = _Ctx(_int(lk.trace_id, 16, "link trace_id"), _int(lk.span_id, 8, "link span_id"),
                            f & 0xFF, bool(f & 0x200), _TraceState(lk.trace_state))
        self.attributes = _attrs(lk.attributes, lk.dropped_attributes_count)


def _int(b: bytes, n: int, what: str) -> int:
    if len(b) not in (0, n):
        raise InvalidRequest(f"{what} must be {n} bytes, got {len(b)}")
    return int.from_bytes(b, "big")


class _SpanView:
    def __init__(self, s):
        if len(s.trace_id) != 16 or not any(s.trace_id):
            raise InvalidRequest("span trace_id must be 16 bytes and not all zero")
        if len(s.span_id) != 8 or not any(s.span_id):
            raise InvalidRequest("span span_id must be 8 bytes and not all zero")
        f = s.flags
        self.context = _Ctx(int.from_bytes(s.trace_id, "big"), int.from_bytes(s.span_id, "big"),
                            f & 0xFF, False, _TraceState(s.trace_state))
        pid = _int(s.parent_span_id, 8, "parent_span_id")
        self.parent = _Ctx(self.context.trace_id, pid, 0, bool(f & 0x200), None) if pid else None
        self.name = s.name
        kind = s.kind or 1      # OTLP UNSPECIFIED reads as INTERNAL, as in the SDKs
        if not 1 <= kind <= 5:
            raise InvalidRequest(f"span kind {kind} is not valid")
        self.kind = _Enum(kind - 1)   # the codec writes kind.value + 1 (SDK numbering)
        self.start_time, self.end_time = s.start_time_unix_nano, s.end_time_unix_nano
        self.attributes = _attrs(s.attributes)
        self.dropped_attributes = s.dropped_attributes_count
        self.events = [_Event(e) for e in s.events]
        self.dropped_events = s.dropped_events_count
        self.links = [_Link(lk) for lk in s.links]
        self.dropped_links = s.dropped_links_count
        if s.status.code not in (0, 1, 2):
            raise InvalidRequest(f"status code {s.status.code} is not valid")
        self.status = _Status(s.status.code, s.status.message)


class _LogView:
    def __init__(self, r):
        self.trace_id = _int(r.trace_id, 16, "log trace_id")
        self.span_id = _int(r.span_id, 8, "log span_id")
        self.trace_flags = r.flags & 0xFF if (r.flags or self.trace_id) else None
        self.timestamp = r.time_unix_nano or None
        self.observed_timestamp = r.observed_time_unix_nano
        self.severity_number = _Enum(r.severity_number) if r.severity_number else None
        self.severity_text = r.severity_text or None
        self.event_name = r.event_name or None
        self.body = from_any(r.body) if r.HasField("body") else None
        self.attributes = from_kv(r.attributes)


class _Resource:
    def __init__(self, res, schema_url):
        self.attributes = _attrs(res.attributes, res.dropped_attributes_count)
        self.schema_url = schema_url or ""


class _Scope:
    def __init__(self, sc, schema_url):
        self.name = sc.name
        self.version = sc.version or None
        self.schema_url = schema_url or None
        self.attributes = _attrs(sc.attributes, sc.dropped_attributes_count)


class _Buckets:
    def __init__(self, b):
        self.offset, self.bucket_counts = b.offset, tuple(b.bucket_counts)


class _Exemplar:
    def __init__(self, e):
        self.filtered_attributes = from_kv(e.filtered_attributes)
        self.value = e.as_int if e.WhichOneof("value") == "as_int" else e.as_double
        self.time_unix_nano = e.time_unix_nano
        self.span_id = _int(e.span_id, 8, "exemplar span_id") if e.span_id else None
        self.trace_id = _int(e.trace_id, 16, "exemplar trace_id") if e.trace_id else None


class _Point:
    def __init__(self, p, kind):
        self.attributes = from_kv(p.attributes)
        self.start_time_unix_nano = p.start_time_unix_nano or None
        self.time_unix_nano = p.time_unix_nano
        self.exemplars = [_Exemplar(e) for e in p.exemplars]
        if kind in ("gauge", "sum"):
            self.value = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
        else:
            self.count, self.sum, self.min, self.max = p.count, p.sum, p.min, p.max
            if kind == "histogram":
                self.bucket_counts = tuple(p.bucket_counts)
                self.explicit_bounds = tuple(p.explicit_bounds)
            else:
                self.scale, self.zero_count, self.flags = p.scale, p.zero_count, p.flags
                self.positive, self.negative = _Buckets(p.positive), _Buckets(p.negative)


def _data_class(name):
    return type(name, (), {})


_KIND_CLASS = {"gauge": _data_class("Gauge"), "sum": _data_class("Sum"),
               "histogram": _data_class("Histogram"),
               "exponential_histogram": _data_class("ExponentialHistogram")}


class _MetricView:
    def __init__(self, m):
        kind = m.WhichOneof("data")
        if kind not in _KIND_CLASS:
            what = "summary metrics are not supported" if kind == "summary" else "it has no data"
            raise Unsupported(f"metric {m.name!r} dropped: {what}")
        src = getattr(m, kind)
        data = _KIND_CLASS[kind]()
        data.data_points = [_Point(p, kind) for p in src.data_points]
        if kind != "gauge":
            data.aggregation_temporality = src.aggregation_temporality
        if kind == "sum":
            data.is_monotonic = src.is_monotonic
        self.data, self.name = data, m.name
        self.description, self.unit = m.description or None, m.unit or None
        self.points = len(data.data_points)


class _Builder:
    """Collects encoded records and definitions into one RecordSet."""

    def __init__(self, signal):
        self.signal = signal
        self.parts: list[bytes] = []
        self.defs: dict[int, bytes] = {}
        self.items = 0

    def define(self, payload: bytes) -> int:
        key = codec.definition_key(payload)
        self.defs[key] = payload
        return key

    def build(self) -> RecordSet:
        return RecordSet.from_parts(self.signal, self.parts, self.defs, items=self.items)


def traces(req) -> RecordSet:
    b = _Builder("traces")
    for rs in req.resource_spans:
        rkey = b.define(codec.encode_resource(_Resource(rs.resource, rs.schema_url)))
        for ss in rs.scope_spans:
            skey = b.define(codec.encode_scope(_Scope(ss.scope, ss.schema_url)))
            for s in ss.spans:
                b.parts.append(codec.encode_span(_SpanView(s), rkey, skey))
                b.items += 1
    return b.build()


def logs(req) -> RecordSet:
    b = _Builder("logs")
    for rl in req.resource_logs:
        rkey = b.define(codec.encode_resource(_Resource(rl.resource, rl.schema_url)))
        for sl in rl.scope_logs:
            skey = b.define(codec.encode_scope(_Scope(sl.scope, sl.schema_url)))
            for r in sl.log_records:
                b.parts.append(codec.encode_log(_LogView(r), r.dropped_attributes_count, rkey, skey))
                b.items += 1
    return b.build()


def metrics(req, rejected: list | None = None) -> RecordSet:
    """``rejected``: if a list, metrics otelplug cannot carry are left out
    and listed there as (data points, reason) -- a partial success, as the
    OTLP receiver answers; otherwise they raise ``Unsupported``."""
    b = _Builder("metrics")
    for rm in req.resource_metrics:
        rkey = b.define(codec.encode_resource(_Resource(rm.resource, rm.schema_url)))
        for sm in rm.scope_metrics:
            skey = b.define(codec.encode_scope(_Scope(sm.scope, sm.schema_url)))
            for m in sm.metrics:
                try:
                    view = _MetricView(m)
                except Unsupported as exc:
                    if rejected is None:
                        raise
                    kind = m.WhichOneof("data")
                    rejected.append((len(getattr(m, kind).data_points) if kind else 0, str(exc)))
                    continue
                b.parts.append(codec.encode_metric(view, rkey, skey, rm.schema_url or None,
                                                   sm.schema_url or None))
                b.items += view.points
    return b.build()


DECODE_FOR = {"traces": traces, "logs": logs, "metrics": metrics}
