"""Lifecycle of the analytics connector (both signals, one shared core)
and the alerts extension: create, start, one batch each, shutdown; the
batch's ack settles once; what was still open is emitted at shutdown."""
from __future__ import annotations

from otelplug import codec
from otelplug.sidecar.extensions import alerts
from otelplug.sidecar.connectors import analytics
from tests.analytics.conftest import free_port
from tests.sidecar.helpers import Capture, counting_ack, make, records_from_spans, sdk_spans


class Host:
    def __init__(self, **extensions):
        self.extensions = extensions

    def extension(self, name):
        return self.extensions.get(name)


def test_connector_and_extension_lifecycle(tmp_path):
    ext = make(alerts.factory, {"endpoint": f"127.0.0.1:{free_port()}",
                                "state_file": str(tmp_path / "state.json")})
    host = Host(alerts=ext)
    ext.start(host)
    cfg = {"alerts": "alerts", "rules": [{"name": "Any", "count": {"match": {"signal": "traces"}}}]}
    from otelplug.sidecar.config.decode import decode
    from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
    from otelplug.sidecar.telemetry import Telemetry
    config = decode(analytics.factory.config, cfg)      # one config object: one shared core
    tel = Telemetry()
    caps = {s: Capture() for s in ("traces", "logs")}
    conns = {s: analytics.factory.create(CreateSettings(ComponentID("analytics"), Kind.CONNECTOR, s, tel),
                                         config, caps[s]) for s in caps}
    assert conns["traces"].core is conns["logs"].core
    for c in conns.values():
        c.start(host)
    assert [r["name"] for r in ext.engine.rules_status()] == ["Any"]
    assert alerts.alert_control(host) is ext.engine          # what the HTTP API calls
    ack, settled = counting_ack()
    conns["traces"].consume(records_from_spans(sdk_spans(5), acks=[ack]))
    assert settled == [False]
    for c in conns.values():
        c.shutdown()
    ext.shutdown()
    assert ext.engine.rules_status() == []          # the connector took its rules away
    names = {codec.decode_metric(p).name for rs in caps["traces"].got for p in rs.payloads()}
    assert "analytics.span.count" in names          # the open window, emitted at shutdown


def test_alert_state_changes_become_log_records_in_the_logs_pipelines(tmp_path):
    from otelplug.sidecar.component import ComponentID, CreateSettings, Kind, PipelineID
    from otelplug.sidecar.config.decode import decode
    from otelplug.sidecar.consumer import FanOut
    from otelplug.sidecar.telemetry import Telemetry

    class Router(FanOut):       # the shape of the service's PipelineRouter
        def __init__(self, pipelines):
            self.pipelines = pipelines
            super().__init__(list(pipelines.values()))

    ext = make(alerts.factory, {"endpoint": "", "state_file": str(tmp_path / "state.json")})
    host = Host(alerts=ext)
    ext.start(host)
    metrics, logs = Capture(), Capture()
    config = decode(analytics.factory.config, {"alerts": "alerts", "rules": [
        {"name": "AnySpan", "count": {"match": {"signal": "traces"}, "within": "1h", "op": ">", "value": 0}}]})
    conn = analytics.factory.create(CreateSettings(ComponentID("analytics"), Kind.CONNECTOR, "traces", Telemetry()),
                                    config, Router({PipelineID("metrics"): metrics, PipelineID("logs"): logs}))
    conn.start(host)
    conn.consume(records_from_spans(sdk_spans(3)))
    ext.evaluate_and_notify()
    recs = [codec.decode_log(p) for rs in logs.got for p in rs.payloads()]
    assert [(r.event_name, r.attributes["alert.to"]) for r in recs] == [
        ("alert.state_change", "pending"), ("alert.state_change", "firing")]
    assert recs[1].attributes["alert.label.alertname"] == "AnySpan" and recs[1].severity_text == "WARN"
    conn.shutdown()
    ext.shutdown()
    assert all(rs.signal == "metrics" for rs in metrics.got) and metrics.got


def test_in_a_service_metrics_go_to_metrics_pipelines_and_alert_events_to_logs(tmp_path):
    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.factories import Registry
    from otelplug.sidecar.service import Service
    from tests.analytics.conftest import wait_for
    m, lg = tmp_path / "m.jsonl", tmp_path / "l.jsonl"
    text = f"""
receivers: {{otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:0}}}}}}}}
exporters:
  file/m: {{path: {m}}}
  file/l: {{path: {lg}}}
connectors:
  analytics:
    windows: [{{name: w, size: 1s}}]
    flush_interval: 200ms
    alerts: alerts
    rules: [{{name: AnySpan, count: {{match: {{signal: traces}}, within: 1h, op: ">", value: 0}}}}]
extensions:
  alerts: {{endpoint: "", evaluation_interval: 100ms, state_file: {tmp_path / 'state.json'}}}
service:
  extensions: [alerts]
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [analytics]}}
    metrics: {{receivers: [analytics], exporters: [file/m]}}
    logs: {{receivers: [analytics], exporters: [file/l]}}
"""
    svc = Service(load("cfg.yaml", Registry.default(), text=text))
    svc.start()
    try:
        next(iter(svc.connectors.values())).consume(records_from_spans(sdk_spans(5)))
        wait_for(lambda: lg.exists() and '"stringValue":"firing"' in lg.read_text(), 20, "the firing event")
    finally:
        svc.shutdown()
    assert "analytics.span.count" in m.read_text() and "logRecords" not in m.read_text()
    assert "analytics.span" not in lg.read_text()
