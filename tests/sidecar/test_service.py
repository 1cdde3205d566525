"""The running sidecar as a process: SIGHUP reload without losing data,
health_check, self-metric names, file exporter output and rotation, and a
broken config on reload keeping the running one."""
from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request

from .test_reliability import (free_port, scrape, sink_span_ids, start_producer, start_sidecar,
                               stop_producer, wait_metrics)
from tests.otlp_sink import OTLPSink
from tests.waiting import wait_for


def wait_healthy(port, timeout=15):
    """Health answers 503 until every pipeline has started, then 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read())
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
        except urllib.error.URLError:
            pass
        time.sleep(0.05)
    raise AssertionError("sidecar never became healthy")


def wait_log(path, text, count, timeout=30):
    """Signals that arrive during a reload merge into one: wait for each."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.read_text().count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not seen {count} times")


def _cfg(channel, sink, mport, hport, batch_timeout="100ms"):
    return f"""
receivers: {{shm: {{channels: [{channel}]}}}}
processors: {{batch: {{timeout: {batch_timeout}}}}}
exporters:
  otlp: {{endpoint: {sink.grpc_endpoint}, tls: {{insecure: true}}}}
extensions:
  health_check: {{endpoint: 127.0.0.1:{hport}}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: 127.0.0.1:{mport}}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [batch], exporters: [otlp]}}
"""


def test_sighup_reload_loses_nothing_and_bad_reload_keeps_running(tmp_path):
    with OTLPSink(http_enabled=False) as sink:
        mport, hport = free_port(), free_port()
        cfg_text = _cfg("reload", sink, mport, hport)
        sidecar = start_sidecar(tmp_path, cfg_text, "reload")
        try:
            wait_metrics(mport)
            assert wait_healthy(hport)["state"] == "ready"
            producer = start_producer("reload", 500)
            for i in range(3):
                time.sleep(0.7)
                (tmp_path / "reload.yaml").write_text(_cfg("reload", sink, mport, hport, f"{100 + i}ms"))
                sidecar.send_signal(signal.SIGHUP)
                wait_log(tmp_path / "reload.log", "reload: done", i + 1)
            time.sleep(0.5)
            (tmp_path / "reload.yaml").write_text("receivers: [\n")     # broken: kept running
            sidecar.send_signal(signal.SIGHUP)
            wait_log(tmp_path / "reload.log", "keeping the running one", 1)
            assert sidecar.poll() is None
            result = stop_producer(producer)
            expected = set(result["span_ids"])
            assert sink.wait_for(lambda: expected <= set(sink_span_ids(sink)), timeout=30), \
                f"missing {len(expected - set(sink_span_ids(sink)))} of {len(expected)}"
            m = wait_metrics(mport)
            assert m['otelplug_process_memory_rss'] > 0 and "otelplug_process_cpu_seconds" in m
        finally:
            sidecar.send_signal(signal.SIGTERM)
            assert sidecar.wait(30) == 0
        log = (tmp_path / "reload.log").read_text()
        assert log.count("reload: done") == 3
        assert "reload: invalid configuration, keeping the running one" in log
        assert "invalid YAML" in log


ACCEPTED = 'otelplug_receiver_accepted_spans_total{receiver="shm",transport="shm"}'
SENT = 'otelplug_exporter_sent_spans_total{exporter="otlp"}'


def test_self_metrics_mirror_collector_names(tmp_path):
    with OTLPSink(http_enabled=False) as sink:
        mport, hport = free_port(), free_port()
        sidecar = start_sidecar(tmp_path, _cfg("names", sink, mport, hport), "names")
        try:
            wait_metrics(mport)
            p = start_producer("names", 300)
            wait_for(lambda: scrape(mport).get(ACCEPTED, 0) >= 100, what="the first spans accepted")
            written = len(stop_producer(p)["span_ids"])
            wait_for(lambda: sink.span_count() == written, what=f"{written} spans at the sink")
            # the counters are updated after the export returns: wait for them too
            m = wait_for(lambda: (m := scrape(mport))[SENT] == written and m, what="the sent counter")
            for name in ('otelplug_receiver_accepted_spans_total{receiver="shm",transport="shm"}',
                         'otelplug_exporter_sent_spans_total{exporter="otlp"}',
                         'otelplug_exporter_queue_capacity{exporter="otlp"}',
                         'otelplug_exporter_queue_size{exporter="otlp"}',
                         'otelplug_processor_incoming_items_total{processor="batch",otel_signal="traces"}',
                         'otelplug_processor_outgoing_items_total{processor="batch",otel_signal="traces"}'):
                assert name in m, name
            assert m[ACCEPTED] == sink.span_count() == written
            assert m['otelplug_exporter_queue_capacity{exporter="otlp"}'] == 1000
        finally:
            sidecar.send_signal(signal.SIGTERM)
            sidecar.wait(30)
        # after SIGTERM the health endpoint is gone too
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{hport}/", timeout=2)
            raise AssertionError("health endpoint still up after shutdown")
        except (urllib.error.URLError, ConnectionError):
            pass


def test_file_exporter_rotation(tmp_path):
    from otelplug.sidecar.exporters import file as file_exp

    from .helpers import make, records_from_spans, sdk_spans
    path = tmp_path / "out" / "spans.jsonl"
    exp = make(file_exp.factory, {"path": str(path), "rotation": {"max_megabytes": 1, "max_backups": 2}})
    exp.start(None)
    big = records_from_spans(sdk_spans(400, attrs={"blob": "y" * 2000}))
    for _ in range(5):
        exp.consume(big)
    exp.shutdown()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["spans.jsonl", "spans.jsonl.1", "spans.jsonl.2"]   # oldest beyond 2 backups gone
    for p in path.parent.iterdir():
        assert p.stat().st_size <= 1 << 20 or p.read_text().count("\n") == 1
        for line in p.read_text().splitlines():
            assert len(json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 400


def test_forward_connector_joins_pipelines(tmp_path, shm_dir):
    """shm -> traces (attributes) -> forward -> traces/out (batch) -> file:
    every span arrives once, edited by the first pipeline."""
    from opentelemetry.sdk.trace import TracerProvider

    from otelplug import ShmSpanProcessor
    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.factories import Registry
    from otelplug.sidecar.service import Service
    out = tmp_path / "spans.jsonl"
    svc = Service(load("fwd.yaml", Registry.default(), text=f"""
receivers: {{shm: {{channels: [fwd]}}}}
processors:
  attributes: {{actions: [{{key: hop, value: first, action: insert}}]}}
  batch: {{timeout: 50ms}}
connectors: {{forward: }}
exporters: {{file: {{path: {out}}}}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [attributes], exporters: [forward]}}
    traces/out: {{receivers: [forward], processors: [batch], exporters: [file]}}
"""))
    svc.start()
    try:
        tp = TracerProvider()
        tp.add_span_processor(ShmSpanProcessor("fwd"))
        tracer = tp.get_tracer("fwd")
        for i in range(50):
            with tracer.start_as_current_span(f"s{i}"):
                pass
        deadline = time.monotonic() + 15
        spans = []
        while time.monotonic() < deadline and len(spans) < 50:
            time.sleep(0.1)
            spans = [s for line in (out.read_text().splitlines() if out.exists() else [])
                     for r in json.loads(line)["resourceSpans"] for sc in r["scopeSpans"]
                     for s in sc["spans"]]
    finally:
        svc.shutdown()
    assert sorted(s["name"] for s in spans) == sorted(f"s{i}" for i in range(50))
    assert all({"key": "hop", "value": {"stringValue": "first"}} in s["attributes"] for s in spans)
