"""otelplug -> the real OpenTelemetry Collector, field by field.

An app process writes spans, log records and metric points through
otelplug's producer processors and saves the OTel SDK's own OTLP encoding
of the same items. ``otelplug run`` (shm receiver -> batch -> the ``otlp``
or ``otlphttp`` exporter, gzip or none, plaintext or TLS with a throwaway
CA) sends them to the Collector's otlp receiver, whose file exporter
writes OTLP-JSON. Every item the Collector wrote must equal what the SDK
encoded, and nothing may be missing or extra.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelplug.otlp import encode
from otelplug.sidecar.exporters.otlp import payload_for
from tests.interop import otlp_compare as cmp
from tests.interop.certs import make_certs
from tests.interop.producer import sdk_traces_request
from tests.peers import run
from tests.sidecar.helpers import records_from_spans

SIGNALS = cmp.SIGNALS


@pytest.fixture(scope="module")
def otelcol(tmp_path_factory):
    d = tmp_path_factory.mktemp("otelcol")
    certs = make_certs(d / "certs")
    ports = {name: run.free_port() for name in ("grpc", "http", "grpc_tls", "http_tls")}
    tls = f"tls: {{cert_file: {certs.cert_file}, key_file: {certs.key_file}}}"
    files = cmp.per_signal(f"  file/{{s}}: {{{{path: {d}/{{s}}.json, flush_interval: 100ms}}}}")
    pipelines = cmp.per_signal("    {s}: {{receivers: [otlp, otlp/tls], exporters: [file/{s}]}}")
    config = f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: 127.0.0.1:{ports['grpc']}}}
      http: {{endpoint: 127.0.0.1:{ports['http']}}}
  otlp/tls:
    protocols:
      grpc: {{endpoint: 127.0.0.1:{ports['grpc_tls']}, {tls}}}
      http: {{endpoint: 127.0.0.1:{ports['http_tls']}, {tls}}}
exporters:
{files}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
{pipelines}
"""
    with run.collector(config, d, ports=ports.values()) as program:
        yield SimpleNamespace(dir=d, ports=ports, certs=certs, program=program)


def exporter_config(otelcol, kind: str, compression: str, tls: bool) -> str:
    port = otelcol.ports[("grpc" if kind == "otlp" else "http") + ("_tls" if tls else "")]
    if kind == "otlp":
        endpoint = f"127.0.0.1:{port}"
    else:
        endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    tls_cfg = f"{{ca_file: {otelcol.certs.ca_file}}}" if tls else "{insecure: true}"
    return f"""
    {kind}:
      endpoint: {endpoint}
      compression: {compression}
      tls: {tls_cfg}"""


@pytest.mark.parametrize("kind,compression,tls", [
    ("otlp", "gzip", False), ("otlp", "none", False),
    ("otlphttp", "gzip", False), ("otlphttp", "none", False),
    ("otlp", "gzip", True), ("otlphttp", "none", True),
])
def test_every_item_arrives_equal(otelcol, tmp_path, kind, compression, tls):
    case = f"{kind}-{compression}-{'tls' if tls else 'plain'}"
    channel = f"interop-{case}"
    metrics_port = run.free_port()
    pipelines = cmp.per_signal(f"    {{s}}: {{{{receivers: [shm], processors: [batch], exporters: [{kind}]}}}}")
    config = f"""
receivers:
  shm: {{channels: [{channel}]}}
processors:
  batch: {{send_batch_size: 40, timeout: 100ms}}
exporters:{exporter_config(otelcol, kind, compression, tls)}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}
  pipelines:
{pipelines}
"""
    with run.sidecar(config, tmp_path, ports=[metrics_port]) as sidecar:
        prefix = str(tmp_path / "sdk")
        subprocess.run([sys.executable, "-m", "tests.interop.producer", channel, prefix, "50", case],
                       check=True, timeout=120)
        want = {s: cmp.flatten(s, [cmp.read_pb(Path(f"{prefix}.{s}.pb"), s)]) for s in SIGNALS}
        assert len(want["traces"]) == 56 and len(want["logs"]) == 23 and len(want["metrics"]) == 7

        cmp.assert_files_hold(otelcol.dir, want, case=case, context=lambda: (
            f"sidecar:\n{sidecar.output()}\ncollector:\n{otelcol.program.output()}"))
        assert sidecar.stop() == 0, sidecar.output()


def test_root_span_flags():
    """A root span's OTLP flags as the SDK writes them (0x100 | trace
    flags) come out of the ring records through both OTLP encoders (found
    by the comparison above: otelplug used to leave bit 8 clear on roots)."""
    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    with tp.get_tracer("t").start_as_current_span("root"):
        pass
    spans = mem.get_finished_spans()
    want = sdk_traces_request(spans).resource_spans[0].scope_spans[0].spans[0].flags
    assert want & 0x100 and not want & 0x200     # known, not remote
    records = records_from_spans(spans)
    for req in (ExportTraceServiceRequest.FromString(payload_for(records)),
                encode.traces_request(records)):
        assert req.resource_spans[0].scope_spans[0].spans[0].flags == want
