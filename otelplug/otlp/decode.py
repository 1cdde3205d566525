"""OTLP Export*ServiceRequest -> RecordSet, so OTLP input runs through the
same pipelines as ring records.

The codec's encoders read SDK-shaped objects (``span.context.trace_id``,
``span.status.status_code.value``, ``attributes.dropped`` ...).  The
functions here present an OTLP message in that shape with the views of
``otelplug.codec.views``, without building SDK objects, so every OTLP field
(dropped counts, remote flags, trace state as sent) reaches the record
unchanged.
"""
from __future__ import annotations

from otelplug import codec
from otelplug.codec import views
from otelplug.codec.recordset import RecordSet

from .values import from_any, from_kv


class InvalidRequest(ValueError):
    """An OTLP payload that is well-formed protobuf but not valid OTLP."""


class Unsupported(InvalidRequest):
    """Valid OTLP that otelplug's records cannot carry (summary metrics)."""


def _attrs(kvs, dropped: int = 0) -> views.Attributes:
    return views.attributes(from_kv(kvs), dropped)


def _int(b: bytes, n: int, what: str) -> int:
    if len(b) not in (0, n):
        raise InvalidRequest(f"{what} must be {n} bytes, got {len(b)}")
    return int.from_bytes(b, "big")


def _link(lk) -> views.Link:
    f = lk.flags
    ctx = views.SpanContext(_int(lk.trace_id, 16, "link trace_id"),
                            _int(lk.span_id, 8, "link span_id"), f & 0xFF, bool(f & 0x200),
                            views.TraceState(lk.trace_state))
    return views.Link(ctx, _attrs(lk.attributes, lk.dropped_attributes_count))


def _span(s) -> views.Span:
    if len(s.trace_id) != 16 or not any(s.trace_id):
        raise InvalidRequest("span trace_id must be 16 bytes and not all zero")
    if len(s.span_id) != 8 or not any(s.span_id):
        raise InvalidRequest("span span_id must be 8 bytes and not all zero")
    f = s.flags
    ctx = views.SpanContext(int.from_bytes(s.trace_id, "big"), int.from_bytes(s.span_id, "big"),
                            f & 0xFF, False, views.TraceState(s.trace_state))
    pid = _int(s.parent_span_id, 8, "parent_span_id")
    parent = views.SpanContext(ctx.trace_id, pid, 0, bool(f & 0x200), None) if pid else None
    kind = s.kind or 1      # OTLP UNSPECIFIED reads as INTERNAL, as in the SDKs
    if not 1 <= kind <= 5:
        raise InvalidRequest(f"span kind {kind} is not valid")
    if s.status.code not in (0, 1, 2):
        raise InvalidRequest(f"status code {s.status.code} is not valid")
    events = [views.Event(e.name, e.time_unix_nano,
                          _attrs(e.attributes, e.dropped_attributes_count)) for e in s.events]
    # the codec writes kind.value + 1 (SDK numbering)
    return views.Span(ctx, parent, s.name, views.EnumValue(kind - 1), s.start_time_unix_nano,
                      s.end_time_unix_nano, _attrs(s.attributes), s.dropped_attributes_count,
                      events, s.dropped_events_count, [_link(lk) for lk in s.links],
                      s.dropped_links_count, views.Status(s.status.code, s.status.message or None))


def _log(r) -> views.LogRecord:
    trace_id = _int(r.trace_id, 16, "log trace_id")
    span_id = _int(r.span_id, 8, "log span_id")
    return views.LogRecord(
        trace_id, span_id, r.flags & 0xFF if (r.flags or trace_id) else None,
        r.time_unix_nano or None, r.observed_time_unix_nano,
        views.EnumValue(r.severity_number) if r.severity_number else None,
        r.severity_text or None, r.event_name or None,
        from_any(r.body) if r.HasField("body") else None, from_kv(r.attributes))


def _resource(res, schema_url) -> views.Resource:
    return views.Resource(_attrs(res.attributes, res.dropped_attributes_count), schema_url or "")


def _scope(sc, schema_url) -> views.Scope:
    return views.Scope(sc.name, sc.version or None, schema_url or None,
                       _attrs(sc.attributes, sc.dropped_attributes_count))


def _exemplar(e) -> views.Exemplar:
    return views.Exemplar(from_kv(e.filtered_attributes),
                          e.as_int if e.WhichOneof("value") == "as_int" else e.as_double,
                          e.time_unix_nano,
                          _int(e.span_id, 8, "exemplar span_id") if e.span_id else None,
                          _int(e.trace_id, 16, "exemplar trace_id") if e.trace_id else None)


def _point(p, kind):
    head = (from_kv(p.attributes), p.start_time_unix_nano or None, p.time_unix_nano)
    exemplars = [_exemplar(e) for e in p.exemplars]
    if kind in ("gauge", "sum"):
        value = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
        return views.NumberPoint(*head, value, exemplars)
    if kind == "histogram":
        return views.HistogramPoint(*head, p.count, p.sum, tuple(p.bucket_counts),
                                    tuple(p.explicit_bounds), p.min, p.max, exemplars)
    return views.ExponentialHistogramPoint(
        *head, p.count, p.sum, p.scale, p.zero_count,
        views.Buckets(p.positive.offset, tuple(p.positive.bucket_counts)),
        views.Buckets(p.negative.offset, tuple(p.negative.bucket_counts)), p.flags, p.min, p.max,
        exemplars)


_KIND_CLASS = {"gauge": views.Gauge, "sum": views.Sum, "histogram": views.Histogram,
               "exponential_histogram": views.ExponentialHistogram}


def _metric(m) -> views.Metric:
    kind = m.WhichOneof("data")
    if kind not in _KIND_CLASS:
        what = "summary metrics are not supported" if kind == "summary" else "it has no data"
        raise Unsupported(f"metric {m.name!r} dropped: {what}")
    src = getattr(m, kind)
    points = [_point(p, kind) for p in src.data_points]
    data = _KIND_CLASS[kind](points, src.aggregation_temporality if kind != "gauge" else 0,
                             src.is_monotonic if kind == "sum" else False)
    return views.Metric(m.name, m.description or None, m.unit or None, data)


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
        rkey = b.define(codec.encode_resource(_resource(rs.resource, rs.schema_url)))
        for ss in rs.scope_spans:
            skey = b.define(codec.encode_scope(_scope(ss.scope, ss.schema_url)))
            for s in ss.spans:
                b.parts.append(codec.encode_span(_span(s), rkey, skey))
                b.items += 1
    return b.build()


def logs(req) -> RecordSet:
    b = _Builder("logs")
    for rl in req.resource_logs:
        rkey = b.define(codec.encode_resource(_resource(rl.resource, rl.schema_url)))
        for sl in rl.scope_logs:
            skey = b.define(codec.encode_scope(_scope(sl.scope, sl.schema_url)))
            for r in sl.log_records:
                b.parts.append(codec.encode_log(_log(r), r.dropped_attributes_count, rkey, skey))
                b.items += 1
    return b.build()


def metrics(req, rejected: list | None = None) -> RecordSet:
    """``rejected``: if a list, metrics otelplug cannot carry are left out
    and listed there as (data points, reason) -- a partial success, as the
    OTLP receiver answers; otherwise they raise ``Unsupported``."""
    b = _Builder("metrics")
    for rm in req.resource_metrics:
        rkey = b.define(codec.encode_resource(_resource(rm.resource, rm.schema_url)))
        for sm in rm.scope_metrics:
            skey = b.define(codec.encode_scope(_scope(sm.scope, sm.schema_url)))
            for m in sm.metrics:
                try:
                    view = _metric(m)
                except Unsupported as exc:
                    if rejected is None:
                        raise
                    kind = m.WhichOneof("data")
                    rejected.append((len(getattr(m, kind).data_points) if kind else 0, str(exc)))
                    continue
                b.parts.append(codec.encode_metric(view, rkey, skey, rm.schema_url or None,
                                                   sm.schema_url or None))
                b.items += len(view.data.data_points)
    return b.build()


DECODE_FOR = {"traces": traces, "logs": logs, "metrics": metrics}
