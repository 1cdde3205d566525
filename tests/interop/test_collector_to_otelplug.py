"""The real Collector's otlp and otlphttp exporters -> otelplug's otlp
receiver (gRPC and HTTP).

The OTel SDK's encoding of spans, log records and metric points (written
by tests/interop/producer.py) is sent over OTLP/gRPC to the Collector,
whose exporter forwards it (gzip or none) to ``otelplug run``:
otlp receiver -> file exporter (OTLP-JSON). Everything must arrive equal,
item by item.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from otelplug.sidecar.receivers.otlp import messages
from tests.interop import otlp_compare as cmp
from tests.peers import run

SIGNALS = cmp.SIGNALS


@pytest.mark.parametrize("exporter,compression", [
    ("otlp", "gzip"), ("otlp", "none"), ("otlphttp", "gzip"), ("otlphttp", "none")])
def test_collector_exports_to_otelplug_receiver(tmp_path, exporter, compression):
    prefix = str(tmp_path / "sdk")
    subprocess.run([sys.executable, "-m", "tests.interop.producer", "unread", prefix, "30", "rx"],
                   check=True, timeout=120)
    requests = {s: Path(f"{prefix}.{s}.pb").read_bytes() for s in SIGNALS}
    want = {s: cmp.flatten(s, [cmp.read_pb(Path(f"{prefix}.{s}.pb"), s)]) for s in SIGNALS}

    side_port, side_http_port, metrics_port = run.free_port(), run.free_port(), run.free_port()
    pipelines = cmp.per_signal("    {s}: {{receivers: [otlp], exporters: [file/{s}]}}")
    files = cmp.per_signal(f"  file/{{s}}: {{{{path: {tmp_path}/{{s}}.json}}}}")
    sidecar_cfg = f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: 127.0.0.1:{side_port}}}
      http: {{endpoint: 127.0.0.1:{side_http_port}}}
exporters:
{files}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}
  pipelines:
{pipelines}
"""
    col_port = run.free_port()
    col_pipelines = cmp.per_signal(f"    {{s}}: {{{{receivers: [otlp], exporters: [{exporter}]}}}}")
    endpoint = (f"127.0.0.1:{side_port}" if exporter == "otlp"
                else f"http://127.0.0.1:{side_http_port}")
    collector_cfg = f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: 127.0.0.1:{col_port}}}
exporters:
  {exporter}:
    endpoint: {endpoint}
    compression: {compression}
    tls: {{insecure: true}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
{col_pipelines}
"""
    with run.sidecar(sidecar_cfg, tmp_path, ports=[side_port, side_http_port, metrics_port]) as sidecar, \
            run.collector(collector_cfg, tmp_path, ports=[col_port]) as collector:
        with grpc.insecure_channel(f"127.0.0.1:{col_port}") as channel:
            for s in SIGNALS:
                service = messages(s)[0]
                call = channel.unary_unary(f"/{service}/Export", request_serializer=None,
                                           response_deserializer=None)
                call(requests[s], timeout=30)

        cmp.assert_files_hold(tmp_path, want, context=lambda: (
            f"sidecar:\n{sidecar.output()}\ncollector:\n{collector.output()}"))
        assert sidecar.stop() == 0, sidecar.output()
