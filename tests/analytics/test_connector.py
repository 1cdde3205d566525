"""The analytics connector on real SDK spans and log records: windows
closed by the flush, metrics decoded from the emitted records, overflow
and late items counted in self-metrics, config errors with their path."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelplug import codec
from otelplug.sidecar.config.decode import decode
from otelplug.sidecar.config.errors import ConfigErrors
from otelplug.sidecar.connectors import analytics
from otelplug.sidecar.connectors.analytics.config import AnalyticsConfig
from otelplug.sidecar.telemetry import Telemetry
from tests.sidecar.helpers import Capture, make, records_from_spans

S = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * S


def spans(service, items):
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tr = tp.get_tracer("t")
    for name, end_s, dur_ms, err, attrs in items:
        s = tr.start_span(name, kind=SpanKind.SERVER, attributes=attrs,
                          start_time=T0 + int(end_s * S) - int(dur_ms * MS))
        if err:
            s.set_status(Status(StatusCode.ERROR))
        s.end(end_time=T0 + int(end_s * S))
    return mem.get_finished_spans()


def points(cap):
    out = {}
    for rs in cap.got:
        for p in rs.payloads():
            m = codec.decode_metric(p)
            for pt in m.points:
                out[(m.name, tuple(sorted(pt.attributes.items())))] = pt
    return out


def connector(cfg, tel=None):
    cap = Capture()
    c = make(analytics.factory, cfg, cap, telemetry=tel or Telemetry())
    c.start(None)
    return c, cap


def test_window_metrics_per_group_with_quantiles_and_error_rate():
    c, cap = connector({"windows": [{"name": "10s", "type": "tumbling", "size": "10s"}],
                        "exclude_dimensions": ["status.code"], "flush_interval": "1h"})
    durs = np.linspace(1, 100, 100)
    items = [("GET /", 1 + i * 0.05, d, i % 10 == 0, None) for i, d in enumerate(durs)]
    c.consume(records_from_spans(spans("shop", items)))
    c.core.flush(T0 + 20 * S)
    c.shutdown()
    got = points(cap)
    key = (("analytics.window", "10s"), ("service.name", "shop"), ("span.kind", "SPAN_KIND_SERVER"),
           ("span.name", "GET /"))
    assert got[("analytics.span.count", key)].value == 100
    assert got[("analytics.span.errors", key)].value == 10
    assert got[("analytics.span.error_rate", key)].value == pytest.approx(0.1)
    assert got[("analytics.span.throughput", key)].value == pytest.approx(10.0)
    p99 = got[("analytics.span.duration.p99", key)].value
    exact = np.quantile(durs / 1000, 0.99, method="lower")
    assert abs(p99 - exact) <= 0.01 * exact
    assert got[("analytics.span.duration.max", key)].value == pytest.approx(0.1)
    pt = got[("analytics.span.count", key)]
    assert (pt.start_time_unix_nano, pt.time_unix_nano) == (T0, T0 + 10 * S)


def test_overflow_and_late_items_are_counted_in_self_metrics():
    tel = Telemetry()
    c, cap = connector({"windows": [{"name": "w", "type": "tumbling", "size": "10s"}],
                        "cardinality_limit": 2, "flush_interval": "1h", "allowed_lateness": "0s",
                        "watermark_delay": "0s"}, tel)
    c.consume(records_from_spans(spans("shop", [(f"op{i}", 1, 1, False, None) for i in range(5)])))
    c.core.flush(T0 + 11 * S)
    c.core.add("traces", records_from_spans(spans("shop", [("op0", 2, 1, False, None)])), T0 + 11 * S)
    c.core.flush(T0 + 12 * S)
    text = tel.exposition()
    assert 'otelplug_analytics_overflow_items_total{connector="analytics",signal="traces"} 3.0' in text
    assert 'otelplug_analytics_late_items_total{connector="analytics",signal="traces"} 1.0' in text
    got = points(cap)
    overflow = [k for k in got if k[0] == "analytics.span.count" and ("otel.metric.overflow", True) in k[1]]
    assert len(overflow) == 1 and got[overflow[0]].value == 3
    c.shutdown()


def test_log_records_to_metrics():
    from opentelemetry._logs import SeverityNumber
    from opentelemetry._logs import LogRecord
    from otelplug.codec.recordset import RecordSet
    res = codec.encode_resource(Resource.create({"service.name": "gen"}))
    rk = codec.definition_key(res)
    parts = [codec.encode_log(LogRecord(timestamp=T0 + S, severity_number=sev, body="x",
                                        event_name="gen.step", attributes={}), 0, rk, 0)
             for sev in (SeverityNumber.INFO, SeverityNumber.ERROR, SeverityNumber.INFO)]
    lengths = np.array([len(p) for p in parts], np.uint32)
    rs = RecordSet("logs", b"".join(parts), np.array([0, lengths[0], lengths[0] + lengths[1]], np.uint64),
                   lengths, {rk: res})
    c, cap = connector({"windows": [{"name": "w", "type": "tumbling", "size": "10s"}],
                        "exclude_dimensions": ["severity"], "flush_interval": "1h"})
    c.core.add("logs", rs, T0)
    c.core.attach("logs", cap, None)
    c.core.flush(T0 + 20 * S)
    got = {k[0]: v.value for k, v in points(cap).items()}
    assert got["analytics.log.count"] == 3 and got["analytics.log.errors"] == 1
    c.shutdown()


CFG = """
windows: [{name: w, type: tumbling, size: 10s}]
alerts: alerts
rules:
  - name: Bad
    for: 5s
    threshold: {window: nope, metric: p99, value: 1, where: {http.route: x}}
  - name: Anom
    anomaly: {window: w, metric: max}
  - name: Two
    count: {match: {name: [a]}}
    absence: {match: {name: [a]}}
"""


def test_invalid_rules_are_config_errors_with_their_path():
    with pytest.raises(ConfigErrors) as exc:
        decode(AnalyticsConfig, yaml.safe_load(CFG), ("connectors", "analytics"))
    text = str(exc.value)
    assert "connectors::analytics::rules::2: needs exactly one of" in text
    with pytest.raises(ConfigErrors) as exc:
        decode(AnalyticsConfig, yaml.safe_load(CFG.split("  - name: Two")[0]), ("connectors", "analytics"))
    text = str(exc.value)
    assert "connectors::analytics::rules::0::threshold::window: unknown window 'nope'" in text
    assert "connectors::analytics::rules::0::threshold::where::http.route: 'http.route' is not a group" in text
    assert "connectors::analytics::rules::1::anomaly::metric: 'max' is not scored" in text
    with pytest.raises(ConfigErrors, match="analytics::alerts: rules need"):
        decode(AnalyticsConfig, {"rules": [{"name": "x", "count": {}}]}, ("connectors", "analytics"))
    with pytest.raises(ConfigErrors, match="group_expiry: must be longer"):
        decode(AnalyticsConfig, {"group_expiry": "30s", "windows": [{"name": "a", "size": "1m"}]})


def test_rules_without_their_alerts_extension_are_a_config_error_with_the_path():
    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.factories import Registry
    from otelplug.sidecar.service import Service
    text = """
receivers: {otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}}
exporters: {debug: {}}
connectors:
  analytics:
    alerts: alerts
    rules: [{name: R, count: {match: {name: [x]}}}]
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    traces: {receivers: [otlp], exporters: [analytics]}
    metrics: {receivers: [analytics], exporters: [debug]}
"""
    with pytest.raises(ConfigErrors, match=r"connectors::analytics::alerts: no alerts extension 'alerts'"):
        Service(load("cfg.yaml", Registry.default(), text=text))


def test_window_metrics_land_in_the_store_and_are_queryable(tmp_path):
    from otelplug.store import open_store
    c, cap = connector({"windows": [{"name": "10s", "type": "tumbling", "size": "10s"}],
                        "flush_interval": "1h"})
    c.consume(records_from_spans(spans("shop", [("GET /", 1, 5, False, None), ("GET /", 2, 7, True, None)])))
    c.core.flush(T0 + 20 * S)
    c.shutdown()
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    store = open_store(url, "write")
    for rs in cap.got:
        store.write(rs)
    rows = store.fetch("SELECT MetricName, Value FROM otel_metrics_gauge WHERE MetricName = ? "
                       "ORDER BY Value", ["analytics.span.count"])
    store.close()
    assert [r["Value"] for r in rows] == [1.0, 1.0]      # one group per status code


def test_an_anomalous_window_is_a_finding(caplog):
    import logging
    c, cap = connector({"windows": [{"name": "1s", "type": "tumbling", "size": "1s"}],
                        "exclude_dimensions": ["status.code"], "flush_interval": "1h",
                        "allowed_lateness": "0s", "watermark_delay": "0s",
                        "anomaly": {"metrics": ["p99"], "min_samples": 5, "history": 10}})
    events = []
    c.core.engine = type("E", (), {"on_event": staticmethod(events.append)})()
    with caplog.at_level(logging.INFO, "otelplug.sidecar"):
        for k in range(12):
            dur = 500 if k == 11 else 10 + k % 3        # steady, then one slow window
            c.core.add("traces", records_from_spans(spans("shop", [("GET /", k + 0.5, dur, False, None)] * 3)),
                       T0 + (k + 1) * S)
            c.core.flush(T0 + (k + 1) * S)
    found = [e for e in events if e["event"] == "analytics.anomaly"]
    assert len(found) == 1 and found[0]["metric"] == "p99" and found[0]["labels"]["span.name"] == "GET /"
    assert "anomaly in 1s p99" in caplog.text
    scores = [k for k in points(cap) if k[0] == "analytics.span.anomaly.score"]
    assert scores
    c.core.engine = None
    c.shutdown()
