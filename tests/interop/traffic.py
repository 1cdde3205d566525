"""Test traffic sent as raw OTLP requests: traces of 3 spans with known
timings, statuses and attributes, encoded by the OTel SDK."""
from __future__ import annotations

import random

import grpc
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

TRACE_SERVICE = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def make_requests(n_traces: int = 300, seed: int = 7) -> list[bytes]:
    """Traces of 3 spans with known start/end times: some erroring, some
    slow, some with a customer tier or a big checkout; in requests of 50
    traces."""
    rnd = random.Random(seed)
    mem = InMemorySpanExporter()
    out = []
    providers = [TracerProvider(resource=Resource.create({"service.name": name}))
                 for name in ("frontend", "payments")]
    for tp in providers:
        tp.add_span_processor(SimpleSpanProcessor(mem))
    t0 = 1_700_000_000_000_000_000
    for i in range(n_traces):
        tracer = providers[i % 2].get_tracer("same.config", "1.0")
        start = t0 + i * 1_000_000
        route = rnd.choice(["/checkout", "/cart", "/search"])
        attrs = {"http.route": route, "items": rnd.choice([1, 5, 12, 50])}
        if rnd.random() < 0.1:
            attrs["customer"] = rnd.choice(["vip", "gold", "basic"])
        root_ms = rnd.choice([1, 3, 8, 20, 30, 45, 60, 120, 300])
        root = tracer.start_span("GET " + route, kind=SpanKind.SERVER, attributes=attrs,
                                 start_time=start)
        ctx = trace.set_span_in_context(root)
        for j, kind in enumerate((SpanKind.CLIENT, SpanKind.INTERNAL)):
            child = tracer.start_span(f"step{j}", context=ctx, kind=kind, start_time=start + 100_000)
            if rnd.random() < 0.05:
                child.set_status(Status(StatusCode.ERROR, "failed"))
            child.end(end_time=start + 100_000 + rnd.choice([200_000, 1_500_000, 9_000_000]))
        root.end(end_time=start + root_ms * 1_000_000)
        if (i + 1) % 50 == 0:
            out.append(encode_spans(mem.get_finished_spans()).SerializeToString())
            mem.clear()
    return out


def send(port: int, requests: list[bytes]) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(TRACE_SERVICE, request_serializer=None, response_deserializer=None)
        for body in requests:
            call(body, timeout=30)
