"""OTLP's transport names, in one table for receivers and exporters: the
HTTP paths (OTLP/HTTP) and the gRPC services and methods (OTLP/gRPC) of
each signal, as the OTLP specification fixes them."""
from __future__ import annotations

HTTP_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}

GRPC_SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
}

#: the full gRPC method path of each signal's Export call
GRPC_METHODS = {signal: f"/{service}/Export" for signal, service in GRPC_SERVICES.items()}
