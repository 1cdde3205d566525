"""SDK objects to the plain model (``otelplug.codec.model``).

What a decoded record must equal: tests compare ``decode(encode(x))`` with
``span_from_sdk(x)`` and friends.  Sequences become tuples and mappings
dicts, as the decoders produce them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import model as m
from . import types as t


def normalize(v):
    """An AnyValue as the decoder returns it: tuples for sequences, dicts
    for mappings, bytes for bytes-likes."""
    if isinstance(v, (str, bytes, bool, int, float)) or v is None:
        return v
    if isinstance(v, bytearray):
        return bytes(v)
    if isinstance(v, Mapping):
        return {k: normalize(x) for k, x in v.items()}
    if isinstance(v, Sequence):
        return tuple(normalize(x) for x in v)
    return v


def attrs(a) -> dict:
    return {k: normalize(v) for k, v in (a or {}).items()}


def _dropped(a) -> int:
    return int(getattr(a, "dropped", 0) or 0)


def resource_from_sdk(resource, pid: int | None = None) -> m.Resource:
    a = attrs(resource.attributes)
    if pid is not None:
        a["process.pid"] = pid
    return m.Resource(a, resource.schema_url or None, _dropped(resource.attributes))


def scope_from_sdk(scope) -> m.Scope:
    return m.Scope(scope.name or "", scope.version, scope.schema_url, attrs(scope.attributes),
                   _dropped(scope.attributes))


def span_from_sdk(span, resource_key: int = 0, scope_key: int = 0) -> m.SpanData:
    ctx = span.context
    parent = span.parent
    return m.SpanData(
        trace_id=ctx.trace_id, span_id=ctx.span_id, name=span.name,
        trace_flags=int(ctx.trace_flags), trace_state=ctx.trace_state.to_header() if ctx.trace_state else "",
        is_remote=bool(ctx.is_remote),
        parent_span_id=parent.span_id if parent is not None else None,
        parent_is_remote=bool(parent.is_remote) if parent is not None else False,
        kind=span.kind.value + 1, start_time_unix_nano=span.start_time or 0,
        end_time_unix_nano=span.end_time or 0, attributes=attrs(span.attributes),
        events=[m.SpanEvent(e.name, e.timestamp, attrs(e.attributes), _dropped(e.attributes))
                for e in span.events],
        links=[m.SpanLink(l.context.trace_id, l.context.span_id, int(l.context.trace_flags),
                          l.context.trace_state.to_header() if l.context.trace_state else "",
                          bool(l.context.is_remote), attrs(l.attributes), _dropped(l.attributes))
               for l in span.links],
        status_code=span.status.status_code.value, status_description=span.status.description,
        dropped_attributes=span.dropped_attributes, dropped_events=span.dropped_events,
        dropped_links=span.dropped_links, resource_key=resource_key, scope_key=scope_key)


def log_from_sdk(record, dropped_attributes: int = 0, resource_key: int = 0,
                 scope_key: int = 0) -> m.LogData:
    """From an API/SDK ``LogRecord`` (``ReadWriteLogRecord.log_record``)."""
    sev = record.severity_number
    return m.LogData(
        time_unix_nano=record.timestamp, observed_time_unix_nano=record.observed_timestamp or 0,
        trace_id=record.trace_id or 0, span_id=record.span_id or 0,
        trace_flags=int(record.trace_flags) if record.trace_flags is not None else None,
        severity_number=sev.value if sev is not None else None,
        severity_text=record.severity_text, event_name=record.event_name,
        body=normalize(record.body), attributes=attrs(record.attributes),
        dropped_attributes=dropped_attributes, resource_key=resource_key, scope_key=scope_key)


def _exemplars(xs) -> list:
    return [m.Exemplar(attrs(x.filtered_attributes), x.value, x.time_unix_nano, x.span_id,
                       x.trace_id) for x in xs]


def metric_from_sdk(metric, resource_key: int = 0, scope_key: int = 0,
                    resource_schema_url=None, scope_schema_url=None) -> m.MetricData:
    data = metric.data
    kind = {"Gauge": t.M_GAUGE, "Sum": t.M_SUM, "Histogram": t.M_HISTOGRAM,
            "ExponentialHistogram": t.M_EXP_HISTOGRAM}[type(data).__name__]
    temporality = int(getattr(data, "aggregation_temporality", 0) or 0) if kind != t.M_GAUGE else 0
    points = []
    for p in data.data_points:
        if kind <= t.M_SUM:
            points.append(m.NumberPoint(attrs(p.attributes), p.start_time_unix_nano,
                                        p.time_unix_nano, p.value, _exemplars(p.exemplars)))
        elif kind == t.M_HISTOGRAM:
            points.append(m.HistogramPoint(
                attrs(p.attributes), p.start_time_unix_nano, p.time_unix_nano, p.count, p.sum,
                tuple(p.bucket_counts), tuple(float(b) for b in p.explicit_bounds), p.min, p.max,
                _exemplars(p.exemplars)))
        else:
            points.append(m.ExpHistogramPoint(
                attrs(p.attributes), p.start_time_unix_nano, p.time_unix_nano, p.count, p.sum,
                p.scale, p.zero_count, p.positive.offset, tuple(p.positive.bucket_counts),
                p.negative.offset, tuple(p.negative.bucket_counts), p.flags, p.min, p.max,
                _exemplars(p.exemplars)))
    return m.MetricData(metric.name, metric.description, metric.unit, kind, temporality,
                        bool(getattr(data, "is_monotonic", False)), points, resource_schema_url,
                        scope_schema_url, resource_key, scope_key)
