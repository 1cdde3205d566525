"""The sidecar under failure, with real processes: a destination outage,
and the sidecar SIGKILLed at random instants while producers keep writing.
The OTLP destination is tests/otlp_sink.py (opentelemetry-proto + grpcio,
no otelplug code)."""
from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


from tests.otlp_sink import OTLPSink

HERE = Path(__file__).parent
OUTAGE_SECONDS = 60  # the figure: a minute of destination downtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_producer(channel, rate):
    p = subprocess.Popen([sys.executable, str(HERE / "span_producer.py"), channel, str(rate)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def stop_producer(p) -> dict:
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    return json.loads(out.strip().splitlines()[-1])


def start_sidecar(tmp_path, config: str, name="sidecar"):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(config)
    log = open(tmp_path / f"{name}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "otelplug.cli.main", "run", "--config", str(cfg),
                             "--log-level", "info"], stdout=log, stderr=subprocess.STDOUT)


def scrape(port) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def wait_metrics(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return scrape(port)
        except OSError:
            time.sleep(0.1)
    raise AssertionError("sidecar metrics endpoint never came up")


def config(channel, sink, metrics_port, storage_dir=None, queue_size=1000):
    storage = ""
    queue_storage = ""
    ext = ""
    if storage_dir:
        storage = f"\nextensions:\n  file_storage:\n    directory: {storage_dir}\n"
        queue_storage = "\n      storage: file_storage"
        ext = "\n  extensions: [file_storage]"
    return f"""
receivers:
  shm: {{channels: [{channel}]}}
processors:
  batch: {{send_batch_size: 200, timeout: 100ms}}
exporters:
  otlp:
    endpoint: {sink.grpc_endpoint}
    tls: {{insecure: true}}
    timeout: 2s
    retry_on_failure: {{initial_interval: 100ms, max_interval: 1s, max_elapsed_time: 0s}}
    sending_queue:
      num_consumers: 4
      queue_size: {queue_size}{queue_storage}
{storage}
service:{ext}
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [batch], exporters: [otlp]}}
"""


def sink_span_ids(sink) -> list[str]:
    return [s.span_id.hex() for s in sink.spans()]


def assert_spans_intact(sink):
    for s in sink.spans():
        attrs = {kv.key: kv.value for kv in s.attributes}
        assert s.name == "work" and attrs["pad"].string_value == "x" * 64
        assert attrs["seq"].HasField("int_value") and len(s.trace_id) == 16


def test_destination_outage_loses_nothing_and_shows_retries(tmp_path):
    with OTLPSink(http_enabled=False) as sink:
        port = free_port()
        sink.fail(seconds=OUTAGE_SECONDS + 1000)   # down from the start
        sidecar = start_sidecar(tmp_path, config("outage", sink, port))
        try:
            wait_metrics(port)
            producer = start_producer("outage", 200)
            time.sleep(OUTAGE_SECONDS)
            m = scrape(port)
            assert m['otelplug_exporter_retries_total{exporter="otlp"}'] > 10
            assert sink.span_count() == 0
            sink.fail()                               # destination back
            result = stop_producer(producer)
            expected = set(result["span_ids"])
            assert result["dropped"] == 0 and len(expected) > OUTAGE_SECONDS * 150
            assert sink.wait_for(lambda: expected <= set(sink_span_ids(sink)), timeout=60), \
                f"missing {len(expected - set(sink_span_ids(sink)))} of {len(expected)} spans"
            m = scrape(port)
            assert m.get('otelplug_exporter_send_failed_spans_total{exporter="otlp"}', 0) == 0
            assert m.get('otelplug_exporter_enqueue_failed_spans_total{exporter="otlp"}', 0) == 0
            assert m['otelplug_exporter_sent_spans_total{exporter="otlp"}'] >= len(expected)
            assert_spans_intact(sink)
        finally:
            sidecar.send_signal(signal.SIGTERM)
            assert sidecar.wait(30) == 0


def test_sidecar_sigkilled_repeatedly_delivers_every_committed_span(tmp_path):
    rng = random.Random(42)
    storage = tmp_path / "storage"
    with OTLPSink(http_enabled=False) as sink:
        producers = [start_producer("killme", 1000) for _ in range(2)]
        port = free_port()
        try:
            for round_ in range(5):
                sidecar = start_sidecar(tmp_path, config("killme", sink, port, storage), f"s{round_}")
                time.sleep(rng.uniform(0.8, 2.5))
                sidecar.send_signal(signal.SIGKILL)
                assert sidecar.wait(10) == -signal.SIGKILL
                time.sleep(rng.uniform(0.0, 0.5))
            results = [stop_producer(p) for p in producers]
            final = start_sidecar(tmp_path, config("killme", sink, port, storage), "final")
            expected = set().union(*(r["span_ids"] for r in results))
            assert all(r["dropped"] == 0 for r in results)
            ok = sink.wait_for(lambda: expected <= set(sink_span_ids(sink)), timeout=60)
            got = sink_span_ids(sink)
            assert ok, f"missing {len(expected - set(got))} of {len(expected)} committed spans"
            assert set(got) <= expected           # nothing invented
            assert_spans_intact(sink)             # nothing corrupted
            dups = len(got) - len(set(got))
            # at-least-once: duplicates only from batches in flight at a kill
            assert dups <= 5 * 3 * 1000, dups
            final.send_signal(signal.SIGTERM)
            assert final.wait(30) == 0
        finally:
            for p in producers:
                if p.poll() is None:
                    p.kill()
