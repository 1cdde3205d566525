"""Every component of the default registry, for every signal it supports,
through its whole life (as the Collector generates for each component):
created from its default config (plus the few settings a default cannot
give: a registry path, an endpoint, a policy), started, handed one batch,
shut down.  Nothing may be lost silently on the way: every batch's ack is
settled exactly once, and not as failed, by the time the component has
shut down (exporters send to a real OTLP sink on 127.0.0.1).

Receivers and extensions have no input to hand a batch to: they are
created, started and shut down (on 127.0.0.1, on ports the OS picks).
"""
from __future__ import annotations

import base64

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelplug.otlp import decode as otlp_decode
from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
from otelplug.sidecar.config.decode import decode
from otelplug.sidecar.config.errors import ErrorList
from otelplug.sidecar.factories import Registry
from otelplug.sidecar.telemetry import Telemetry

from ..otlp_sink import OTLPSink
from .helpers import Capture, app_registry, counting_ack

REGISTRY = Registry.default()
FACTORIES = sorted({(f.kind.value, f.type): f for kind in Kind for t in REGISTRY.types(kind)
                    for f in [REGISTRY.get(kind, t)]}.items())

ACTION = [{"key": "lifecycle", "value": "yes", "action": "upsert"}]
ANY_PORT = "127.0.0.1:0"


def sample_config(kind: Kind, type_: str, ctx) -> dict:
    """What the default config of (kind, type) needs to be valid and to talk
    only to peers of this test; everything else stays at its default."""
    registry = ctx["registry"]
    samples = {
        (Kind.RECEIVER, "otlp"): {"protocols": {"grpc": {"endpoint": ANY_PORT},
                                                "http": {"endpoint": ANY_PORT}}},
        (Kind.RECEIVER, "shm"): {"channels": [ctx["channel"]]},
        (Kind.PROCESSOR, "adaptive_sampler"): {"endpoint": ANY_PORT},
        (Kind.PROCESSOR, "attributes"): {"actions": ACTION},
        (Kind.PROCESSOR, "memory_limiter"): {"check_interval": "1s", "limit_mib": 1 << 16},
        (Kind.PROCESSOR, "resource"): {"attributes": ACTION},
        (Kind.PROCESSOR, "semconv"): {"registry": registry},
        (Kind.PROCESSOR, "tail_sampling"): {"decision_wait": "50ms",
                                            "policies": [{"name": "all", "type": "always_sample"}]},
        (Kind.EXPORTER, "file"): {"path": str(ctx["tmp"] / "out.json")},
        (Kind.EXPORTER, "jaeger"): {"protocol": "otlp_http",
                                    "endpoint": ctx["sink"].http_endpoint},
        (Kind.EXPORTER, "otlp_grpc"): {"endpoint": ctx["sink"].grpc_endpoint,
                                       "tls": {"insecure": True}},
        (Kind.EXPORTER, "otlp_http"): {"endpoint": ctx["sink"].http_endpoint},
        (Kind.EXPORTER, "prometheus"): {"endpoint": ANY_PORT},
        (Kind.EXPORTER, "loadbalancing"): {"resolver": {"static": {"hostnames": [
            ctx["sink"].grpc_endpoint]}}, "protocol": {"otlp": {"tls": {"insecure": True}}}},
        (Kind.EXPORTER, "store"): {"url": f"duckdb:///{ctx['tmp'] / 'store.duckdb'}"},
        (Kind.CONNECTOR, "semconv_router"): {"registry": registry},
        (Kind.EXTENSION, "file_storage"): {"directory": str(ctx["tmp"] / "storage")},
        (Kind.EXTENSION, "health_check"): {"endpoint": ANY_PORT},
        (Kind.EXTENSION, "api"): {"endpoint": ANY_PORT, "anonymous_public": True},
    }
    return samples.get((kind, type_), {})


def signals_of(factory) -> list[str]:
    if factory.kind is Kind.CONNECTOR:
        return sorted({exp for exp, _rcv in factory.connects})
    if factory.kind in (Kind.RECEIVER, Kind.EXTENSION):
        return ["-"]            # one instance serves every signal
    return list(factory.signals)


CASES = [pytest.param(f, sig, id=f"{kind}-{type_}-{sig}")
         for (kind, type_), f in FACTORIES for sig in signals_of(f)]

# protobuf JSON carries bytes as base64 (OTLP/JSON's hex is a different mapping)
TRACE_ID = base64.b64encode(bytes.fromhex("5b8efff798038103d269b633813fc60c")).decode()
SPAN_ID = base64.b64encode(bytes.fromhex("eee19b7ec3c1b174")).decode()
_TRACES = {"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "lifecycle"}}]},
    "scopeSpans": [{"scope": {"name": "lifecycle"}, "spans": [{
        "traceId": TRACE_ID, "spanId": SPAN_ID,
        "name": "op", "kind": 2, "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000100000000",
        "attributes": [{"key": "app.mode", "value": {"stringValue": "fast"}}]}]}]}]}
_LOGS = {"resourceLogs": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "lifecycle"}}]},
    "scopeLogs": [{"scope": {"name": "lifecycle"}, "logRecords": [{
        "timeUnixNano": "1700000000000000000", "severityNumber": 9,
        "body": {"stringValue": "hello"},
        "traceId": TRACE_ID, "spanId": SPAN_ID}]}]}]}
_METRICS = {"resourceMetrics": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "lifecycle"}}]},
    "scopeMetrics": [{"scope": {"name": "lifecycle"}, "metrics": [{
        "name": "lifecycle.requests", "unit": "1", "sum": {
            "aggregationTemporality": 2, "isMonotonic": True,
            "dataPoints": [{"asInt": "3", "startTimeUnixNano": "1700000000000000000",
                            "timeUnixNano": "1700000001000000000"}]}}]}]}]}


def one_batch(signal: str, acks):
    if signal == "traces":
        rs = otlp_decode.traces(json_format.ParseDict(_TRACES, ExportTraceServiceRequest()))
    elif signal == "logs":
        rs = otlp_decode.logs(json_format.ParseDict(_LOGS, ExportLogsServiceRequest()))
    else:
        rs = otlp_decode.metrics(json_format.ParseDict(_METRICS, ExportMetricsServiceRequest()))
    assert len(rs) == 1
    return rs.with_acks(acks)


@pytest.fixture(scope="module")
def sink():
    with OTLPSink() as s:
        yield s


@pytest.mark.parametrize("factory,signal", CASES)
def test_component_lifecycle(factory, signal, sink, tmp_path, monkeypatch):
    monkeypatch.setenv("OTELPLUG_SHM_DIR", str(tmp_path))
    ctx = {"registry": app_registry(tmp_path), "channel": f"lifecycle{id(tmp_path)}",
           "tmp": tmp_path, "sink": sink}
    errs = ErrorList()
    path = (factory.kind.value, factory.type)
    config = decode(factory.config, sample_config(factory.kind, factory.type, ctx), path, errs)
    assert [str(e) for e in errs.errors] == []
    sig = None if signal == "-" else signal
    settings = CreateSettings(ComponentID(factory.type), factory.kind, sig, Telemetry())
    downstream = Capture()
    if factory.kind is Kind.RECEIVER:
        component = factory.create(settings, config, {s: downstream for s in factory.signals})
    elif factory.kind in (Kind.PROCESSOR, Kind.CONNECTOR):
        component = factory.create(settings, config, downstream)
    else:
        component = factory.create(settings, config)
    component.start(None)
    ack, settled = counting_ack()
    try:
        if factory.kind not in (Kind.RECEIVER, Kind.EXTENSION):
            component.consume(one_batch(signal, (ack,)))
    finally:
        component.shutdown()
    if factory.kind not in (Kind.RECEIVER, Kind.EXTENSION):
        # settled once, as delivered (or deliberately dropped), not as failed
        assert settled == [False], f"{factory.type}: the batch's ack settled as {settled}"


def test_every_default_factory_is_covered():
    """A factory added to the registry gets a lifecycle case automatically;
    one that cannot be imported is an error, not a silent gap."""
    assert REGISTRY.unavailable == {}
    covered = {(p.values[0].kind, p.values[0].type) for p in CASES}
    assert covered == {(f.kind, f.type) for _k, f in FACTORIES}
    assert len(covered) >= 20
