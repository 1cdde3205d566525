"""Data-path failures of issue #18, each reproduced with real peers: a real
sidecar process, a ring producer process, an OTLP destination process that
goes away and comes back, real files and sockets.

* a batch processor in front of an exporter that refuses (full sending
  queue during an outage) keeps the data and pushes back to the rings
  instead of dropping it;
* persistent-queue writes that fail (short writes, a file size limit) are
  refused, never acknowledged, and leave no temporaries;
* memory_limiter limits what the pipeline holds, admits again once that
  drops, and OTLP/HTTP bodies are bounded before they are read;
* the HTTP listen backlog, non-object OTLP-JSON, refusals counted once;
* ``ack: durable``: an OTLP request answered 200 survives a SIGKILL.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.sidecar.test_reliability import (free_port, scrape, start_producer, start_sidecar,
                                            stop_producer, wait_metrics)

HERE = Path(__file__).parent


def wait_for(predicate, timeout: float, what: str):
    """Poll for a state; fail with ``what`` if it never comes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def start_sink(port: int) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, str(HERE / "sink_process.py"), str(port)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def stop_sink(p: subprocess.Popen) -> list[str]:
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    return json.loads(out.strip().splitlines()[-1])["span_ids"]


def metric(m: dict, name: str, **labels) -> float:
    lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return m.get(f"{name}{{{lab}}}" if lab else name, 0.0)


def test_batch_keeps_what_a_full_queue_refuses_during_an_outage(tmp_path):
    """#18 item 2: batch -> exporter with queue_size 2, destination process
    down for seconds while a producer writes 1,000 spans/s: every span
    arrives, nothing is dropped anywhere, the refusals reach the ring."""
    sink_port, metrics_port = free_port(), free_port()
    cfg = f"""
receivers:
  shm: {{channels: [bp]}}
processors:
  batch: {{send_batch_size: 200, timeout: 100ms}}
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink_port}
    tls: {{insecure: true}}
    timeout: 1s
    retry_on_failure: {{initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 0s}}
    sending_queue: {{num_consumers: 2, queue_size: 2}}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [batch], exporters: [otlp]}}
"""
    sink = start_sink(sink_port)
    sidecar = start_sidecar(tmp_path, cfg)
    producer = None
    try:
        wait_metrics(metrics_port)
        producer = start_producer("bp", 1000)
        sent = lambda: metric(scrape(metrics_port), "otelplug_exporter_sent_spans_total", exporter="otlp")
        wait_for(lambda: sent() >= 400, 30, "spans delivered before the outage")
        before = stop_sink(sink)                 # the destination goes away
        refused = lambda: metric(scrape(metrics_port), "otelplug_processor_refused_items_total",
                                 processor="batch", otel_signal="traces")
        # back-pressure, sustained: the queue (2 batches) is long full and
        # thousands of spans have been pushed back to the ring
        wait_for(lambda: refused() >= 3000, 60, "batch to push back")
        sink = start_sink(sink_port)             # ... and comes back
        wait_for(lambda: sent() >= len(before) + 1000, 60, "delivery to resume")
        result = stop_producer(producer)
        producer = None
        expected = set(result["span_ids"])
        assert result["dropped"] == 0 and len(expected) >= 3000
        m = scrape(metrics_port)
        wait_for(lambda: sent() >= len(expected), 60, "every span to be sent")
        after = stop_sink(sink)
        sink = None
        got = before + after
        missing = expected - set(got)
        assert not missing, f"missing {len(missing)} of {len(expected)} spans"
        assert set(got) <= expected
        m = scrape(metrics_port)
        for name in ("otelplug_processor_failed_items_total", "otelplug_processor_dropped_items_total"):
            assert metric(m, name, processor="batch", otel_signal="traces") == 0, name
        assert metric(m, "otelplug_exporter_send_failed_spans_total", exporter="otlp") == 0
        # at-least-once: duplicates come only from what was in flight when
        # the ring was rewound (a batch or two and the queue), not the outage
        assert len(got) - len(set(got)) <= 2000, len(got) - len(set(got))
        # refusals at the exporter: once per batch, re-offers counted apart
        assert metric(m, "otelplug_exporter_enqueue_failed_spans_total", exporter="otlp") <= 5 * 200
        log = (tmp_path / "sidecar.log").read_text()
        assert "dropping them" not in log
    finally:
        for p in (producer, sink):
            if p is not None and p.poll() is None:
                p.kill()
        sidecar.send_signal(signal.SIGTERM)
        assert sidecar.wait(30) == 0
