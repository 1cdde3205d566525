"""ShmLogRecordProcessor and ShmMetricExporter through a real ring."""
from __future__ import annotations

import logging
import os

import pytest

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (AggregationTemporality, MetricExportResult,
                                              PeriodicExportingMetricReader)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otelplug import ShmLogRecordProcessor, ShmMetricExporter, ShmSpanProcessor
from otelplug.codec import from_sdk, types

from producer_helpers import drain


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_logs_and_events_reach_the_consumer():
    proc = ShmLogRecordProcessor()
    lp = LoggerProvider(resource=Resource({"service.name": "logs"}), shutdown_on_exit=False)
    lp.add_log_record_processor(proc)
    tp = TracerProvider(shutdown_on_exit=False)
    logger = lp.get_logger("app", "1.0")
    with tp.get_tracer("t").start_as_current_span("req") as span:
        logger.emit(body={"msg": "hello", "items": [1, 2.5, "x", None, b"\x00"]},
                    severity_number=SeverityNumber.ERROR, severity_text="ERROR",
                    attributes={"user": "é", "map": {"k": [True]}})
    logger.emit(event_name="app.started", body=None)
    # stdlib logging through the SDK's handler
    handler = LoggingHandler(logger_provider=lp)
    pylog = logging.getLogger("otelplug.test.stdlib")
    pylog.addHandler(handler)
    pylog.propagate = False
    pylog.warning("warned %d", 3)
    pylog.removeHandler(handler)
    assert proc.force_flush()
    got = drain()
    assert len(got.logs) == 3
    pid, first = got.logs[0]
    assert first.body == {"msg": "hello", "items": (1, 2.5, "x", None, b"\x00")}
    assert first.trace_id == span.get_span_context().trace_id
    assert first.span_id == span.get_span_context().span_id
    assert first.severity_number == SeverityNumber.ERROR.value
    assert first.attributes == {"user": "é", "map": {"k": (True,)}}
    assert got.resource_of(pid, first).attributes["process.pid"] == os.getpid()
    assert got.scope_of(pid, first).name == "app"
    assert got.logs[1][1].event_name == "app.started"
    assert got.logs[2][1].body == "warned 3"
    assert got.logs[2][1].severity_text == "WARN"
    assert proc.stats()["written"] == 3
    lp.shutdown()


class _Recording(ShmMetricExporter):
    """Keeps what the reader exported, to compare with what the ring holds."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.exported = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.exported.append(metrics_data)
        return super().export(metrics_data, timeout_millis, **kwargs)


def test_every_metric_kind_round_trips_through_the_ring():
    exporter = _Recording(preferred_temporality={Counter: AggregationTemporality.DELTA})
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    mp = MeterProvider(
        metric_readers=[reader], resource=Resource({"service.name": "metrics"}),
        views=[View(instrument_name="latency.exp", aggregation=ExponentialBucketHistogramAggregation())],
        shutdown_on_exit=False)
    meter = mp.get_meter("m", "0.1")
    meter.create_counter("requests").add(5, {"route": "/a"})
    meter.create_up_down_counter("inflight").add(-2)
    meter.create_histogram("latency", unit="ms").record(12.5, {"route": "/a"})
    exp = meter.create_histogram("latency.exp")
    for v in (0.001, 1, 3.5, 1000):
        exp.record(v)
    meter.create_gauge("temperature").set(21.5)
    meter.create_observable_gauge("cpu", callbacks=[lambda o: [__import__(
        "opentelemetry.metrics", fromlist=["Observation"]).Observation(0.25)]])
    assert reader.force_flush()
    got = drain()
    expected = []
    for md in exporter.exported:
        for rm in md.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    expected.append(from_sdk.metric_from_sdk(
                        m, 0, 0, rm.schema_url or None, sm.schema_url or None))
    decoded = [rec for _, rec in got.metrics]
    assert len(decoded) == len(expected) == 6
    for rec, exp_m in zip(decoded, expected):
        exp_m.resource_key, exp_m.scope_key = rec.resource_key, rec.scope_key
        assert repr(rec) == repr(exp_m)
    by_name = {m.name: m for m in decoded}
    assert by_name["requests"].kind == types.M_SUM and by_name["requests"].is_monotonic
    assert by_name["requests"].temporality == AggregationTemporality.DELTA.value
    assert by_name["inflight"].kind == types.M_SUM and not by_name["inflight"].is_monotonic
    assert by_name["inflight"].temporality == AggregationTemporality.CUMULATIVE.value
    assert by_name["latency"].kind == types.M_HISTOGRAM and by_name["latency"].unit == "ms"
    assert by_name["latency.exp"].kind == types.M_EXP_HISTOGRAM
    assert by_name["latency.exp"].points[0].count == 4
    assert by_name["temperature"].kind == types.M_GAUGE
    assert by_name["cpu"].points[0].value == 0.25
    pid = got.metrics[0][0]
    assert got.resource_of(pid, decoded[0]).attributes["service.name"] == "metrics"
    mp.shutdown()


def test_a_metric_too_large_for_one_record_is_split():
    exporter = ShmMetricExporter(capacity=1 << 16, max_record=2048)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    mp = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    counter = mp.get_meter("m").create_counter("many")
    for i in range(300):
        counter.add(i, {"series": f"s-{i:04d}"})
    assert reader.force_flush()
    got = drain()
    assert exporter.stats()["dropped"] == 0 and len(got.metrics) > 1
    values = sorted(p.value for _, m in got.metrics for p in m.points)
    assert values == list(range(300))
    mp.shutdown()


def test_signals_share_one_ring_per_process():
    sp = ShmSpanProcessor()
    lp = ShmLogRecordProcessor()
    me = ShmMetricExporter()
    assert sp.producer is lp.producer is me.producer
    sp.shutdown()
    lp.shutdown()
    # still open for the metric exporter, closed after the last user
    assert me.export(type("MD", (), {"resource_metrics": []})()) == MetricExportResult.SUCCESS
    me.shutdown()
    assert me.producer._closed
