"""One endpoint parser, one TLS config pair, one table of OTLP names for
every network component (otelplug/sidecar/config/transport.py,
otelplug/otlp/protocol.py)."""
from __future__ import annotations

import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from otelplug.otlp.protocol import GRPC_METHODS, GRPC_SERVICES, HTTP_PATHS
from otelplug.sidecar.config import ConfigErrors
from otelplug.sidecar.config.model import load
from otelplug.sidecar.factories import Registry

PIPE = """
service:
  pipelines:
    metrics: {receivers: [otlp], exporters: [prometheus]}
"""


@pytest.mark.parametrize("bad", [":9464", "h:99999", "localhost"])
def test_every_listener_rejects_the_same_endpoints_with_the_same_message(bad):
    text = f"""
receivers: {{otlp: {{protocols: {{http: {{endpoint: '{bad}'}}}}}}}}
exporters: {{prometheus: {{endpoint: '{bad}'}}}}
extensions: {{health_check: {{endpoint: '{bad}'}}}}
""" + PIPE
    with pytest.raises(ConfigErrors) as ei:
        load("c.yaml", Registry.default(), text=text)
    messages = {}
    for e in ei.value.errors:
        messages[e.path[0]] = e.message
    assert set(messages) == {"receivers", "exporters", "extensions"}, messages
    assert len(set(messages.values())) == 1
    assert messages["receivers"].startswith("must be host:port")


def test_grpc_names_are_the_services_opentelemetry_proto_declares():
    declared = {
        "traces": trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"],
        "metrics": metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"],
        "logs": logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"],
    }
    for signal, service in declared.items():
        assert GRPC_SERVICES[signal] == service.full_name
        assert GRPC_METHODS[signal] == f"/{service.full_name}/{service.methods[0].name}"
    assert HTTP_PATHS == {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}
