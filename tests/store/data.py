"""Telemetry built with the OpenTelemetry SDK and encoded by the codec into
RecordSets, as the sidecar would hand them to the store exporter."""
from __future__ import annotations

import warnings

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.sdk.metrics.export import (AggregationTemporality, Gauge, Histogram,
                                              HistogramDataPoint, Metric, NumberDataPoint, Sum)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Status, StatusCode

from otelplug import codec
from otelplug.codec.recordset import RecordSet

HOUR = 3600 * 10**9


def record_set(signal, items, defs) -> RecordSet:
    return RecordSet.from_parts(signal, items, defs)


def _defs(resource, scope, defs):
    rp = codec.encode_resource(resource)
    rk = codec.definition_key(rp)
    defs[rk] = rp
    if scope is None:
        return rk, 0
    sp = codec.encode_scope(scope)
    sk = codec.definition_key(sp)
    defs[sk] = sp
    return rk, sk


def spans(specs, service="shop"):
    """Finished SDK spans from ``specs``: dicts with name, start (ns),
    duration (ns), optional error, attributes, parent (index of an earlier
    spec), service."""
    providers = {}
    out = []
    made = []
    for spec in specs:
        svc = spec.get("service", service)
        if svc not in providers:
            mem = InMemorySpanExporter()
            tp = TracerProvider(resource=Resource.create({"service.name": svc, "host.name": "h1"}))
            tp.add_span_processor(SimpleSpanProcessor(mem))
            providers[svc] = (tp.get_tracer("store.test", "0.1"), mem)
        tracer, mem = providers[svc]
        from opentelemetry import trace
        ctx = None
        if spec.get("parent") is not None:
            ctx = trace.set_span_in_context(made[spec["parent"]])
        s = tracer.start_span(spec["name"], context=ctx, start_time=spec["start"],
                              attributes=spec.get("attributes", {}))
        if spec.get("event"):
            s.add_event(spec["event"], {"k": "v"}, timestamp=spec["start"] + 1)
        if spec.get("error"):
            s.set_status(Status(StatusCode.ERROR, "boom"))
        made.append(s)
        s.end(end_time=spec["start"] + spec["duration"])
    for tracer, mem in providers.values():
        out.extend(mem.get_finished_spans())
    return out


def span_records(sdk_spans) -> RecordSet:
    defs, items = {}, []
    for s in sdk_spans:
        rk, sk = _defs(s.resource, s.instrumentation_scope, defs)
        items.append(codec.encode_span(s, rk, sk))
    return record_set("traces", items, defs)


def log_records(specs, service="shop") -> RecordSet:
    """specs: dicts with time (ns), body, severity (SeverityNumber), event,
    trace_id, span_id, attributes."""
    defs, items = {}, []
    res = Resource.create({"service.name": service})
    scope = InstrumentationScope("store.test.logs", "0.1")
    for spec in specs:
        rec = LogRecord(timestamp=spec["time"], observed_timestamp=spec["time"],
                        severity_text=spec.get("severity", SeverityNumber.INFO).name,
                        severity_number=spec.get("severity", SeverityNumber.INFO),
                        body=spec.get("body", ""), attributes=spec.get("attributes", {}),
                        event_name=spec.get("event"))
        rec.trace_id = spec.get("trace_id", 0)
        rec.span_id = spec.get("span_id", 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rw = ReadWriteLogRecord(rec, resource=res, instrumentation_scope=scope)
        rk, sk = _defs(res, scope, defs)
        items.append(codec.encode_log(rw.log_record, rw.dropped_attributes, rk, sk))
    return record_set("logs", items, defs)


def metric_records(t_ns, service="shop") -> RecordSet:
    """One gauge, one sum and one histogram metric, one point each at t_ns."""
    defs = {}
    res = Resource.create({"service.name": service})
    scope = InstrumentationScope("store.test.metrics", "0.1")
    rk, sk = _defs(res, scope, defs)
    metrics = [
        Metric("queue.depth", "items waiting", "{item}",
               Gauge([NumberDataPoint({"queue": "a"}, None, t_ns, 7)])),
        Metric("requests", None, "1", Sum([NumberDataPoint({"route": "/"}, t_ns - HOUR, t_ns, 42)],
                                          AggregationTemporality.CUMULATIVE, True)),
        Metric("latency", None, "ms", Histogram([HistogramDataPoint(
            {"route": "/"}, t_ns - HOUR, t_ns, 3, 60.0, [1, 1, 1], [10.0, 50.0], 5.0, 40.0)],
            AggregationTemporality.DELTA)),
    ]
    items = [codec.encode_metric(m, rk, sk) for m in metrics]
    rs = record_set("metrics", items, defs)
    rs.items = 3
    return rs
