"""RecordSet -> OTLP Export*ServiceRequest messages (reference encoder).

Records are grouped by resource and then scope definition, in first-seen
order, as OTLP nests them.  Field mapping follows what OTLP defines; where
the OTel Python SDK exporter leaves a field out (link trace_state, trace
flags in span ``flags``, dropped resource attributes), we still carry it:
the record holds it, and dropping it would lose data.
"""
from __future__ import annotations

import logging

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from otelplug import codec
from otelplug.codec import model
from otelplug.codec import types as t

from .values import to_any, to_kv

log = logging.getLogger("otelplug.otlp")

_HAS_IS_REMOTE = trace_pb2.SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = trace_pb2.SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK


def _id(v: int | None, n: int) -> bytes:
    return v.to_bytes(n, "big") if v else b""


class _Definitions:
    """Decoded resource/scope definitions of one RecordSet, memoised."""

    def __init__(self, defs):
        self.raw = defs
        self.cache = {}
        self.missing = 0

    def get(self, key: int, default):
        if not key:
            return default
        d = self.cache.get(key)
        if d is None:
            payload = self.raw.get(key)
            if payload is None:
                self.missing += 1
                return default
            d = self.cache[key] = codec.decode_definition(payload)
        return d


def _resource_pb(r: model.Resource) -> Resource:
    return Resource(attributes=to_kv(r.attributes), dropped_attributes_count=r.dropped_attributes)


def _scope_pb(s: model.Scope) -> InstrumentationScope:
    return InstrumentationScope(name=s.name, version=s.version or "", attributes=to_kv(s.attributes),
                                dropped_attributes_count=s.dropped_attributes)


def _group(records, decode):
    """{resource_key: {scope_key: [decoded]}} in first-seen order."""
    groups: dict = {}
    for payload in records.payloads():
        item = decode(payload)
        groups.setdefault(item.resource_key, {}).setdefault(item.scope_key, []).append(item)
    return groups


def span_pb(s: model.SpanData) -> trace_pb2.Span:
    # parent-is-remote is known for every span (a root's parent is not
    # remote): bit 8 always, as the OTel SDKs write it
    flags = (s.trace_flags & 0xFF) | _HAS_IS_REMOTE
    if s.parent_span_id is not None and s.parent_is_remote:
        flags |= _IS_REMOTE
    return trace_pb2.Span(
        trace_id=_id(s.trace_id, 16), span_id=_id(s.span_id, 8), trace_state=s.trace_state or "",
        parent_span_id=_id(s.parent_span_id, 8), flags=flags, name=s.name, kind=s.kind,
        start_time_unix_nano=s.start_time_unix_nano, end_time_unix_nano=s.end_time_unix_nano,
        attributes=to_kv(s.attributes), dropped_attributes_count=s.dropped_attributes,
        events=[trace_pb2.Span.Event(time_unix_nano=e.time_unix_nano, name=e.name,
                                     attributes=to_kv(e.attributes),
                                     dropped_attributes_count=e.dropped_attributes)
                for e in s.events],
        dropped_events_count=s.dropped_events,
        links=[trace_pb2.Span.Link(trace_id=_id(lk.trace_id, 16), span_id=_id(lk.span_id, 8),
                                   trace_state=lk.trace_state or "", attributes=to_kv(lk.attributes),
                                   dropped_attributes_count=lk.dropped_attributes,
                                   flags=(lk.trace_flags & 0xFF) | _HAS_IS_REMOTE
                                   | (_IS_REMOTE if lk.is_remote else 0))
               for lk in s.links],
        dropped_links_count=s.dropped_links,
        status=trace_pb2.Status(code=s.status_code, message=s.status_description or ""),
    )


def _nested(records, decode, request, resource_field, scope_field, items_field, to_pb):
    """The Resource -> Scope -> items nesting that traces and logs share."""
    defs = _Definitions(records.defs)
    for rkey, scopes in _group(records, decode).items():
        res = defs.get(rkey, model.Resource())
        r = getattr(request, resource_field).add(resource=_resource_pb(res), schema_url=res.schema_url or "")
        for skey, items in scopes.items():
            sc = defs.get(skey, None)
            scoped = getattr(r, scope_field).add(scope=_scope_pb(sc) if sc else InstrumentationScope(),
                                                 schema_url=(sc.schema_url or "") if sc else "")
            getattr(scoped, items_field).extend(to_pb(it) for it in items)
    _warn_missing(defs)
    return request


def traces_request(records) -> ExportTraceServiceRequest:
    return _nested(records, codec.decode_span, ExportTraceServiceRequest(),
                   "resource_spans", "scope_spans", "spans", span_pb)


def log_pb(r: model.LogData) -> logs_pb2.LogRecord:
    return logs_pb2.LogRecord(
        time_unix_nano=r.time_unix_nano or 0, observed_time_unix_nano=r.observed_time_unix_nano,
        severity_number=r.severity_number or 0, severity_text=r.severity_text or "",
        body=to_any(r.body), attributes=to_kv(r.attributes),
        dropped_attributes_count=r.dropped_attributes,
        flags=(r.trace_flags or 0) & 0xFF, trace_id=_id(r.trace_id, 16), span_id=_id(r.span_id, 8),
        event_name=r.event_name or "")


def logs_request(records) -> ExportLogsServiceRequest:
    return _nested(records, codec.decode_log, ExportLogsServiceRequest(),
                   "resource_logs", "scope_logs", "log_records", log_pb)


def _number(point_pb, v) -> None:
    if isinstance(v, int):
        point_pb.as_int = v
    else:
        point_pb.as_double = v


def _exemplars(target, xs) -> None:
    for x in xs:
        e = target.add(filtered_attributes=to_kv(x.filtered_attributes), time_unix_nano=x.time_unix_nano,
                       span_id=_id(x.span_id, 8), trace_id=_id(x.trace_id, 16))
        _number(e, x.value)


def metric_pb(m: model.MetricData) -> metrics_pb2.Metric:
    out = metrics_pb2.Metric(name=m.name, description=m.description or "", unit=m.unit or "")
    if m.kind in (t.M_GAUGE, t.M_SUM):
        if m.kind == t.M_GAUGE:
            pts = out.gauge.data_points
            out.gauge.SetInParent()
        else:
            out.sum.aggregation_temporality = m.temporality
            out.sum.is_monotonic = m.is_monotonic
            pts = out.sum.data_points
        for p in m.points:
            dp = pts.add(attributes=to_kv(p.attributes), start_time_unix_nano=p.start_time_unix_nano or 0,
                         time_unix_nano=p.time_unix_nano)
            _number(dp, p.value)
            _exemplars(dp.exemplars, p.exemplars)
    elif m.kind == t.M_HISTOGRAM:
        out.histogram.aggregation_temporality = m.temporality
        for p in m.points:
            dp = out.histogram.data_points.add(
                attributes=to_kv(p.attributes), start_time_unix_nano=p.start_time_unix_nano or 0,
                time_unix_nano=p.time_unix_nano, count=p.count, sum=p.sum,
                bucket_counts=list(p.bucket_counts), explicit_bounds=list(p.explicit_bounds),
                min=p.min, max=p.max)
            _exemplars(dp.exemplars, p.exemplars)
    else:
        out.exponential_histogram.aggregation_temporality = m.temporality
        for p in m.points:
            dp = out.exponential_histogram.data_points.add(
                attributes=to_kv(p.attributes), start_time_unix_nano=p.start_time_unix_nano or 0,
                time_unix_nano=p.time_unix_nano, count=p.count, sum=p.sum, scale=p.scale,
                zero_count=p.zero_count, flags=p.flags, min=p.min, max=p.max)
            dp.positive.offset = p.positive_offset
            dp.positive.bucket_counts.extend(p.positive_bucket_counts)
            dp.negative.offset = p.negative_offset
            dp.negative.bucket_counts.extend(p.negative_bucket_counts)
            _exemplars(dp.exemplars, p.exemplars)
    return out


def metrics_request(records) -> ExportMetricsServiceRequest:
    defs = _Definitions(records.defs)
    req = ExportMetricsServiceRequest()
    for rkey, scopes in _group(records, codec.decode_metric).items():
        res = defs.get(rkey, model.Resource())
        first = next(iter(scopes.values()))[0]
        rm = req.resource_metrics.add(resource=_resource_pb(res),
                                      schema_url=first.resource_schema_url or res.schema_url or "")
        for skey, metrics in scopes.items():
            sc = defs.get(skey, None)
            sm = rm.scope_metrics.add(scope=_scope_pb(sc) if sc else InstrumentationScope(),
                                      schema_url=metrics[0].scope_schema_url or
                                      ((sc.schema_url or "") if sc else ""))
            sm.metrics.extend(metric_pb(m) for m in metrics)
    _warn_missing(defs)
    return req


def _warn_missing(defs: _Definitions) -> None:
    if defs.missing:
        log.warning("%d records refer to resource/scope definitions that were never written; "
                    "exported with an empty resource/scope", defs.missing)


REQUEST_FOR = {"traces": traces_request, "logs": logs_request, "metrics": metrics_request}


def request(records):
    """The Export*ServiceRequest for a RecordSet of any signal."""
    return REQUEST_FOR[records.signal](records)
