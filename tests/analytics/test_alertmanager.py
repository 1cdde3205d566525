"""End to end: spans over OTLP/HTTP into a real ``otelplug run``; the
analytics connector's rule fires an alert that a real Alertmanager shows
(read back from its /api/v2/alerts), the webhook gets Alertmanager's
webhook JSON, the alert resolves; the CLI lists/acks/silences; state
survives a restart and a SIGHUP reload with a changed threshold."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.analytics.conftest import ROOT, Sidecar, free_port, http_json, wait_for


def config(tmp, am_url, hook_url, otlp_port, ctl_port, value=2, am_down=False, keep="0s"):
    am = f"http://127.0.0.1:{free_port()}" if am_down else am_url
    text = f"""
receivers:
  otlp:
    protocols:
      http: {{endpoint: 127.0.0.1:{otlp_port}}}
exporters:
  file: {{path: {tmp / 'metrics.json'}}}
connectors:
  analytics:
    windows: [{{name: 2s, type: tumbling, size: 2s}}]
    exclude_dimensions: [status.code]
    allowed_lateness: 0s
    watermark_delay: 0s
    flush_interval: 200ms
    alerts: alerts
    rules:
      - name: CheckoutErrors
        labels: {{severity: page}}
        annotations: {{summary: checkout fails}}
        keep_firing_for: {keep}
        count: {{match: {{name: [checkout], status: error}}, within: 2s, op: ">", value: {value}}}
extensions:
  alerts:
    state_file: {tmp / 'alerts-state.json'}
    endpoint: 127.0.0.1:{ctl_port}
    evaluation_interval: 200ms
    resend_interval: 1s
    retry_initial_interval: 100ms
    retry_max_interval: 500ms
    alertmanagers: [{{endpoint: "{am}"}}]
    webhooks: [{{endpoint: "{hook_url}"}}]
service:
  extensions: [alerts]
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [analytics]}}
    metrics: {{receivers: [analytics], exporters: [file]}}
"""
    path = tmp / "otelplug.yaml"
    path.write_text(text)
    return path


def send_errors(port, n, name="checkout"):
    tp = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    exp = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=5)
    tp.add_span_processor(SimpleSpanProcessor(exp))
    tr = tp.get_tracer("t")
    for _ in range(n):
        with tr.start_as_current_span(name) as s:
            s.set_status(Status(StatusCode.ERROR))
    tp.shutdown()


def cli(ctl_port, *args):
    r = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "alerts", "--endpoint",
                        f"127.0.0.1:{ctl_port}", *args], capture_output=True, text=True, timeout=30,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return r


def test_alert_fires_and_resolves_in_a_real_alertmanager(tmp_path, alertmanager, webhook):
    otlp, ctl = free_port(), free_port()
    sc = Sidecar(config(tmp_path, alertmanager.url, webhook.url, otlp, ctl))
    try:
        sc.wait_listening(otlp)
        sc.wait_listening(ctl)
        t0 = time.monotonic()
        send_errors(otlp, 5)
        [am_alert] = wait_for(lambda: alertmanager.alerts("CheckoutErrors"), 20, "the alert in Alertmanager")
        latency = time.monotonic() - t0
        # errors keep coming (so it keeps firing) until the CLI has seen and acknowledged it
        stop = threading.Event()
        feeder = threading.Thread(target=lambda: [send_errors(otlp, 3) or stop.wait(0.3)
                                                  for _ in iter(stop.is_set, True)], daemon=True)
        feeder.start()
        assert am_alert["labels"] == {"alertname": "CheckoutErrors", "severity": "page"}
        assert am_alert["annotations"] == {"summary": "checkout fails"}
        assert am_alert["status"]["state"] == "active"
        # the CLI sees it firing, acknowledges it
        r = cli(ctl, "list")
        assert r.returncode == 0 and "CheckoutErrors" in r.stdout and "firing" in r.stdout, r.stdout + r.stderr
        aid = http_json(f"http://127.0.0.1:{ctl}/api/alerts")[0]["id"]
        r = cli(ctl, "ack", aid, "--by", "ann", "--note", "on it")
        assert r.returncode == 0, r.stderr
        assert http_json(f"http://127.0.0.1:{ctl}/api/alerts")[0]["ack"]["by"] == "ann"
        assert cli(ctl, "ack", "ffffffff").returncode != 0
        stop.set()
        feeder.join(10)
        # no more errors: the count drops under the threshold, the alert resolves
        wait_for(lambda: not alertmanager.alerts("CheckoutErrors"), 30, "the alert resolved in Alertmanager")
        states = [a["state"] for a in http_json(f"http://127.0.0.1:{ctl}/api/alerts")]
        assert states == ["resolved"]
        wait_for(lambda: any(b["status"] == "resolved" for b in webhook.bodies), 10, "a resolved webhook")
        firing = [b for b in webhook.bodies if b["status"] == "firing"][0]
        assert firing["version"] == "4" and firing["commonLabels"]["alertname"] == "CheckoutErrors"
        assert firing["alerts"][0]["labels"]["severity"] == "page"
        events = http_json(f"http://127.0.0.1:{ctl}/api/events")
        assert [e["alert.to"] for e in events if e["event"] == "alert.state_change"] == [
            "pending", "firing", "resolved"]
        # the rule's status: what it matched; a rule matching nothing says "never"
        r = cli(ctl, "rules")
        assert r.returncode == 0 and "CheckoutErrors" in r.stdout and "never" not in r.stdout, r.stdout
        assert http_json(f"http://127.0.0.1:{ctl}/api/rules")[0]["matched"] >= 5
        # the window metrics went out to the metrics pipeline too
        wait_for(lambda: "analytics.span.count" in (tmp_path / "metrics.json").read_text(), 10, "metrics")
        print(f"first span -> alert visible in Alertmanager: {latency:.2f}s")
    finally:
        sc.stop()


def test_alertmanager_down_retries_then_delivers_and_state_survives_restart(tmp_path, alertmanager, webhook):
    otlp, ctl = free_port(), free_port()
    cfg = config(tmp_path, alertmanager.url, webhook.url, otlp, ctl, am_down=True, keep="1h")
    sc = Sidecar(cfg)
    try:
        sc.wait_listening(ctl)
        send_errors(otlp, 5)
        wait_for(lambda: [a for a in http_json(f"http://127.0.0.1:{ctl}/api/alerts") if a["state"] == "firing"],
                 20, "firing")
        aid = http_json(f"http://127.0.0.1:{ctl}/api/alerts")[0]["id"]
        http_json(f"http://127.0.0.1:{ctl}/api/alerts/{aid}/ack", {"by": "bob", "note": "x"})
        wait_for(lambda: "retrying in" in sc.output(), 20, "failed deliveries retried")
        r = cli(ctl, "silence", "team=none", "--duration", "1h", "--by", "bob")
        assert r.returncode == 0, r.stderr
    finally:
        sc.stop()
    state = json.loads((tmp_path / "alerts-state.json").read_text())
    assert [a["state"] for a in state["alerts"]] == ["firing"] and state["silences"]
    # restart with the Alertmanager up: the same alert, still firing (keep_firing_for),
    # its ack and the silence restored, and now delivered
    cfg = config(tmp_path, alertmanager.url, webhook.url, otlp, ctl, keep="1h")
    sc = Sidecar(cfg)
    try:
        sc.wait_listening(ctl)
        got = http_json(f"http://127.0.0.1:{ctl}/api/alerts")
        assert [(a["id"], a["state"], a["ack"]["by"]) for a in got] == [(aid, "firing", "bob")]
        assert http_json(f"http://127.0.0.1:{ctl}/api/silences")[0]["matchers"] == {"team": "none"}
        wait_for(lambda: alertmanager.alerts("CheckoutErrors"), 20, "the alert delivered after the restart")
        # silencing it here stops the resends; resolving by hand sends endsAt now
        r = cli(ctl, "resolve", aid[:6], "--by", "bob")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: not alertmanager.alerts("CheckoutErrors"), 20, "resolved in Alertmanager")
    finally:
        sc.stop()


def test_sighup_reload_changes_the_threshold_and_keeps_alert_state(tmp_path, alertmanager, webhook):
    otlp, ctl = free_port(), free_port()
    cfg = config(tmp_path, alertmanager.url, webhook.url, otlp, ctl, value=1000, keep="1h")
    sc = Sidecar(cfg)
    try:
        sc.wait_listening(otlp)
        sc.wait_listening(ctl)
        send_errors(otlp, 5)
        assert http_json(f"http://127.0.0.1:{ctl}/api/alerts") == []    # not under 1000
        config(tmp_path, alertmanager.url, webhook.url, otlp, ctl, value=2, keep="1h")
        sc.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload" in sc.output().lower(), 20, "the reload logged")
        sc.wait_listening(ctl)

        def fire():
            send_errors(otlp, 4)
            return alertmanager.alerts("CheckoutErrors")
        wait_for(fire, 30, "the alert under the lowered threshold", interval=0.3)
        aid = http_json(f"http://127.0.0.1:{ctl}/api/alerts")[0]["id"]
        http_json(f"http://127.0.0.1:{ctl}/api/alerts/{aid}/ack", {"by": "cy"})
        # a second reload (same rules) keeps the alert and its ack
        sc.proc.send_signal(signal.SIGHUP)
        send_errors(otlp, 4)
        wait_for(lambda: sc.output().lower().count("reload") >= 2, 20, "the second reload")
        got = http_json(f"http://127.0.0.1:{ctl}/api/alerts")
        assert [(a["id"], a["state"], a["ack"]["by"]) for a in got] == [(aid, "firing", "cy")]
    finally:
        sc.stop()
