"""An app process for interop tests: writes spans, log records and metric
points through otelplug's producer processors (one ring), and the OTel
SDK's own OTLP encoding of the very same items to ``<out>.{traces,logs,
metrics}.pb`` -- what the far end must receive, written by code that is
not otelplug's.

    python -m tests.interop.producer CHANNEL OUT_PREFIX [SPANS [CASE]]

CASE goes into the resource as ``interop.case``, so that a test sharing one
Collector between cases can tell its own items apart.
"""
from __future__ import annotations

import os
import sys

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.span import SpanContext, TraceFlags, TraceState

from otelplug import ShmLogRecordProcessor, ShmMetricExporter, ShmSpanProcessor


class TeeSpans(SpanProcessor):
    """otelplug's processor, and a copy of every ended span."""

    def __init__(self, shm):
        self.shm, self.ended = shm, []

    def on_end(self, span):
        self.shm.on_end(span)
        self.ended.append(span)

    def force_flush(self, timeout_millis=30_000):
        return self.shm.force_flush(timeout_millis)


class TeeLogs(LogRecordProcessor):
    def __init__(self, shm):
        self.shm, self.emitted = shm, []

    def on_emit(self, log_data):
        self.shm.on_emit(log_data)
        self.emitted.append(log_data)

    # the SDK names this hook emit() in some versions
    emit = on_emit

    def shutdown(self):
        self.shm.shutdown()

    def force_flush(self, timeout_millis=30_000):
        return self.shm.force_flush(timeout_millis)


class TeeMetrics(ShmMetricExporter):
    def __init__(self, channel):
        super().__init__(channel, preferred_temporality={Counter: AggregationTemporality.DELTA})
        self.exported = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.exported.append(metrics_data)
        return super().export(metrics_data, timeout_millis, **kwargs)


REMOTE_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
REMOTE_PARENT_ID = 0xB7AD6B7169203331
LINKED_TRACE_ID = 0xFEDCBA9876543210FEDCBA9876543210
LINKED_SPAN_ID = 0xFFFFFFFFFFFFFFF1


def make_spans(tracer, n_plain: int, trace_id: int = REMOTE_TRACE_ID) -> None:
    """A trace continuing a remote parent (``trace_id``): a server root with
    an event, an erroring client child with a link and an exception event,
    one span of each other kind, then ``n_plain`` small root spans."""
    remote = SpanContext(trace_id, REMOTE_PARENT_ID, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "v1")]))
    parent_ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    with tracer.start_as_current_span(
            "GET /cart", context=parent_ctx, kind=SpanKind.SERVER,
            attributes={"s": "ünï", "b": True, "i": -(2**63), "f": 1.5, "sa": ["a", "b"],
                        "ia": [1, 2], "fa": [0.5, -2.0], "ba": [True, False]}) as root:
        root.add_event("cache.miss", {"key": "k1", "size": 10})
        link = SpanContext(LINKED_TRACE_ID, LINKED_SPAN_ID, is_remote=True,
                           trace_flags=TraceFlags(1))
        with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT,
                                          links=[Link(link, {"why": "batch"})]) as child:
            child.set_status(Status(StatusCode.ERROR, "timeout"))
            child.record_exception(ValueError("boom"))
        for kind in (SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER):
            with tracer.start_as_current_span(f"kind.{kind.name.lower()}", kind=kind) as s:
                s.set_status(Status(StatusCode.OK))
    for i in range(n_plain):
        with tracer.start_as_current_span(f"plain{i % 7}", attributes={"n": i, "pad": "x" * (i % 50)}):
            pass


def make_logs(logger) -> None:
    logger.emit(body={"msg": "hello", "items": [1, 2.5, "x", True]},
                severity_number=SeverityNumber.ERROR, severity_text="ERROR",
                attributes={"user": "é", "n": 3})
    logger.emit(body="plain text", severity_number=SeverityNumber.INFO, severity_text="INFO")
    logger.emit(body=b"\x00\x01bytes", severity_number=SeverityNumber.WARN,
                attributes={"list": ["a", "b"]})
    for i in range(20):
        logger.emit(body=f"line {i}", severity_number=SeverityNumber.DEBUG, attributes={"i": i})


def make_metrics(meter) -> None:
    requests = meter.create_counter("app.requests", unit="{request}", description="Requests")
    active = meter.create_up_down_counter("app.active", unit="{request}")
    latency = meter.create_histogram("app.latency", unit="s", description="Latency",
                                     explicit_bucket_boundaries_advisory=[0.01, 0.1, 1.0])
    depth = meter.create_gauge("app.queue.depth", unit="{item}")
    for i in range(60):
        route = "/a" if i % 3 else "/b"
        requests.add(1 + i % 2, {"route": route})
        active.add(1 if i % 4 else -1, {"route": route})
        latency.record((i % 9) * 0.05, {"route": route})
        depth.set(i % 5)


def sdk_traces_request(spans):
    """The SDK's encoding, plus the W3C trace flags in bits 0-7 of span and
    link ``flags``: OTLP defines them there, and the SDK's encoder (1.45)
    writes only the parent-is-remote bits 8-9."""
    request = encode_spans(spans)
    by_id = {s.context.span_id: s for s in spans}
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                sdk = by_id[int.from_bytes(span.span_id, "big")]
                span.flags |= int(sdk.context.trace_flags)
                for link, sdk_link in zip(span.links, sdk.links):
                    link.flags |= int(sdk_link.context.trace_flags)
    return request


def main(channel: str, out_prefix: str, n_plain: int = 50, case: str = "") -> None:
    resource = Resource.create({"service.name": "interop", "service.version": "1.0",
                                "process.pid": os.getpid(), "host.name": "interop-host",
                                "interop.case": case})
    tee_spans = TeeSpans(ShmSpanProcessor(channel))
    tp = TracerProvider(resource=resource, shutdown_on_exit=False)
    tp.add_span_processor(tee_spans)
    tracer = tp.get_tracer("interop.tracer", "2.0.1")

    tee_logs = TeeLogs(ShmLogRecordProcessor(channel))
    lp = LoggerProvider(resource=resource, shutdown_on_exit=False)
    lp.add_log_record_processor(tee_logs)

    tee_metrics = TeeMetrics(channel)
    reader = PeriodicExportingMetricReader(tee_metrics, export_interval_millis=3_600_000)
    mp = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)

    with tracer.start_as_current_span("logging-parent"):
        make_logs(lp.get_logger("interop.logger", "0.3"))
    make_spans(tracer, n_plain)
    make_metrics(mp.get_meter("interop.meter", "0.2"))
    reader.force_flush()       # exactly one metrics export

    tee_spans.force_flush()
    tee_logs.force_flush()
    with open(out_prefix + ".traces.pb", "wb") as f:
        f.write(sdk_traces_request(tee_spans.ended).SerializeToString())
    with open(out_prefix + ".logs.pb", "wb") as f:
        f.write(encode_logs(tee_logs.emitted).SerializeToString())
    with open(out_prefix + ".metrics.pb", "wb") as f:
        f.write(encode_metrics(tee_metrics.exported[0]).SerializeToString())
    print("done", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], int(args[2]) if len(args) > 2 else 50, args[3] if len(args) > 3 else "")
