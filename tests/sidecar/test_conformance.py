"""Conformance: the same telemetry, exported (a) by the OTel SDK's official
OTLP exporters and (b) through ShmSpanProcessor / ShmLogRecordProcessor /
ShmMetricExporter -> rings -> sidecar -> otelplug's OTLP exporter, arrives
at two independent OTLP sinks (tests/otlp_sink.py) equal field by field,
for gRPC and for HTTP.

Known, deliberate differences, normalised below (otelplug carries what OTLP
defines; the Python SDK exporter leaves these out):
- span and link ``flags``: otelplug also sets the W3C trace flags (bits 0-7);
- link ``trace_state``: otelplug keeps it;
- metrics: each reader collects at its own instant, so point timestamps differ.
"""
from __future__ import annotations


import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.span import SpanContext, TraceFlags, TraceState

from otelplug import ShmLogRecordProcessor, ShmMetricExporter, ShmSpanProcessor
from otelplug.sidecar.config.model import load
from otelplug.sidecar.factories import Registry
from otelplug.sidecar.service import Service
from tests.otlp_sink import OTLPSink


def sdk_exporters(transport, sink):
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        ep = sink.grpc_endpoint
        return (OTLPSpanExporter(endpoint=ep, insecure=True), OTLPLogExporter(endpoint=ep, insecure=True),
                OTLPMetricExporter(endpoint=ep, insecure=True))
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    base = sink.http_endpoint
    return (OTLPSpanExporter(endpoint=base + "/v1/traces"), OTLPLogExporter(endpoint=base + "/v1/logs"),
            OTLPMetricExporter(endpoint=base + "/v1/metrics"))


def sidecar_config(transport, channel, sink):
    exp = (f"otlp: {{endpoint: {sink.grpc_endpoint}, tls: {{insecure: true}}}}" if transport == "grpc"
           else f"otlp_http: {{endpoint: {sink.http_endpoint}}}")
    name = "otlp" if transport == "grpc" else "otlp_http"
    return f"""
receivers: {{shm: {{channels: [{channel}]}}}}
processors: {{batch: {{timeout: 50ms}}}}
exporters: {{{exp}}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [batch], exporters: [{name}]}}
    logs: {{receivers: [shm], processors: [batch], exporters: [{name}]}}
    metrics: {{receivers: [shm], processors: [batch], exporters: [{name}]}}
"""


def produce(tracer, logger, meter):
    remote_parent = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                                trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "abc")]))
    from opentelemetry import trace
    with tracer.start_as_current_span("root", context=trace.set_span_in_context(
            trace.NonRecordingSpan(remote_parent)), kind=SpanKind.SERVER,
            attributes={"s": "ünïcødé", "b": True, "i": -(2**63), "f": 1.5, "nan": float("nan"),
                        "inf": float("-inf"), "sa": ["a", ""], "ba": [True, False], "ia": [1, 2**62],
                        "fa": [0.1, 2.5], "empty": ""}) as root:
        root.add_event("ev1", {"k": "v"})
        root.add_event("ev2")
        link_ctx = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(0))
        with tracer.start_as_current_span("child", links=[Link(link_ctx, {"why": "batch"})],
                                          kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "boom"))
        for kind in (SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER):
            with tracer.start_as_current_span(f"k{kind.value}", kind=kind) as s:
                s.set_status(Status(StatusCode.OK))
    with tracer.start_as_current_span("local-root"):      # a trace's root: no parent at all
        pass
    logger.emit(body={"nested": [1, "two", {"three": b"\x00\xff"}]}, severity_number=SeverityNumber.WARN,
                severity_text="WARN", attributes={"n": 1, "bytes": b"raw"})
    logger.emit(event_name="checkout.done", body="ok", attributes={"n": 2, "amount": 9.5})
    logger.emit(body=None, attributes={"n": 3})
    meter.create_counter("c", unit="1", description="a counter").add(5, {"a": "b"})
    meter.create_up_down_counter("u").add(-3)
    meter.create_histogram("h", unit="ms").record(12.5, {"route": "/x"})
    meter.create_histogram("h2", explicit_bucket_boundaries_advisory=[1.0, 10.0]).record(3)
    meter.create_gauge("g").set(0.75)


def norm_span(s):
    s = type(s).FromString(s.SerializeToString())
    s.flags &= ~0xFF
    for lk in s.links:
        lk.flags &= ~0xFF
        lk.trace_state = ""
    return s


def norm_metric(m):
    m = type(m).FromString(m.SerializeToString())
    kind = m.WhichOneof("data")
    for p in getattr(m, kind).data_points:
        p.time_unix_nano = 0
        if kind != "gauge":
            p.start_time_unix_nano = 0
    return m


def _by(items, key):
    out = {}
    for it in items:
        out.setdefault(key(it), []).append(it)
    return out


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_same_telemetry_same_otlp(transport, shm_dir):
    channel = f"conf{transport}"
    with OTLPSink() as ref_sink, OTLPSink() as our_sink:
        svc = Service(load("conformance.yaml", Registry.default(),
                           text=sidecar_config(transport, channel, our_sink)))
        svc.start()
        try:
            span_exp, log_exp, metric_exp = sdk_exporters(transport, ref_sink)
            resource = Resource.create({"service.name": "conformance"})
            tp = TracerProvider(resource=resource)
            tp.add_span_processor(BatchSpanProcessor(span_exp))
            tp.add_span_processor(ShmSpanProcessor(channel, stamp_pid=False))
            lp = LoggerProvider(resource=resource)
            lp.add_log_record_processor(BatchLogRecordProcessor(log_exp))
            lp.add_log_record_processor(ShmLogRecordProcessor(channel, stamp_pid=False))
            readers = [PeriodicExportingMetricReader(metric_exp, export_interval_millis=10**8),
                       PeriodicExportingMetricReader(ShmMetricExporter(channel, stamp_pid=False), export_interval_millis=10**8)]
            mp = MeterProvider(resource=resource, metric_readers=readers)
            produce(tp.get_tracer("conf.scope", "2.0", schema_url="https://opentelemetry.io/schemas/1.26.0"),
                    lp.get_logger("conf.logs", "1.0"), mp.get_meter("conf.meter", "3.0"))
            tp.force_flush()
            lp.force_flush()
            mp.force_flush()
            ok = our_sink.wait_for(lambda: our_sink.span_count() >= 6 and our_sink.log_count() >= 3
                                   and len(our_sink.metrics()) >= 5, timeout=20)
            assert ok, (our_sink.span_count(), our_sink.log_count(), len(our_sink.metrics()))
        finally:
            svc.shutdown()
        for provider in (tp, lp, mp):   # before the sinks go, or their readers retry noisily
            provider.shutdown()
        # spans
        ref = {s.span_id: s for s in ref_sink.spans()}
        ours = {s.span_id: s for s in our_sink.spans()}
        assert len(ref) == 6 and set(ref) == set(ours)
        for sid in ref:
            assert norm_span(ours[sid]) == norm_span(ref[sid]), ref[sid].name
        # the resource and scope around them
        (ref_rs,) = ref_sink.requests("traces")[0].resource_spans
        our_rs = our_sink.requests("traces")[0].resource_spans[0]
        assert our_rs.resource == ref_rs.resource and our_rs.schema_url == ref_rs.schema_url
        assert our_rs.scope_spans[0].scope == ref_rs.scope_spans[0].scope
        assert our_rs.scope_spans[0].schema_url == ref_rs.scope_spans[0].schema_url
        # logs, matched on their "n" attribute
        key = lambda r: next(kv.value.int_value for kv in r.attributes if kv.key == "n")
        ref_logs, our_logs = _by(ref_sink.log_records(), key), _by(our_sink.log_records(), key)
        assert sorted(ref_logs) == sorted(our_logs) == [1, 2, 3]
        for n in ref_logs:
            assert our_logs[n] == ref_logs[n]
        # metrics, matched by name
        ref_m = {m.name: norm_metric(m) for m in ref_sink.metrics()}
        our_m = {m.name: norm_metric(m) for m in our_sink.metrics()}
        assert set(ref_m) == set(our_m) == {"c", "u", "h", "h2", "g"}
        for name in ref_m:
            assert our_m[name] == ref_m[name], name
