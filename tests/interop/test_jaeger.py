"""otelplug's jaeger exporter -> the real Jaeger v2 -> Jaeger's query API.

The same spans (tests/interop/producer.make_spans: a remote parent, an
event, an error with an exception event, a link, every span kind) go out
through each protocol of the exporter -- OTLP/HTTP, OTLP/gRPC, Thrift
binary over HTTP, Thrift compact over UDP -- each under its own service
name and trace id. Jaeger must then answer /api/traces/{id},
/api/services and /api/operations with the right services, operations,
tags, logs, references and error flags, derived here from the SDK spans.
"""
from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otelplug.sidecar.exporters import jaeger as jaeger_exporter
from tests.interop import jaeger_peer
from tests.interop.producer import LINKED_SPAN_ID, REMOTE_PARENT_ID, make_spans
from tests.peers import run
from tests.sidecar.helpers import make, records_from_spans

PROTOCOLS = {"otlp_http": 0x11, "otlp_grpc": 0x22, "thrift_http": 0x33, "thrift_compact": 0x44}
KINDS = {SpanKind.SERVER: "server", SpanKind.CLIENT: "client", SpanKind.PRODUCER: "producer",
         SpanKind.CONSUMER: "consumer", SpanKind.INTERNAL: "internal"}


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory):
    peer = jaeger_peer.start(tmp_path_factory.mktemp("jaeger"))
    with peer.program:
        yield peer


def sdk_spans(service: str, trace_id: int):
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": service, "host.name": "h1",
                                                  "pod.count": 3}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    make_spans(tp.get_tracer("shop.tracer", "2.0.1"), 2, trace_id=trace_id)
    return [s for s in mem.get_finished_spans() if s.context.trace_id == trace_id]


def endpoint(jaeger, protocol: str) -> str:
    port = jaeger.ports[protocol]
    return {"otlp_http": f"http://127.0.0.1:{port}", "otlp_grpc": f"127.0.0.1:{port}",
            "thrift_http": f"http://127.0.0.1:{port}/api/traces",
            "thrift_compact": f"127.0.0.1:{port}"}[protocol]


def tags(obj) -> dict:
    """key -> value; the query API writes int64 values outside JavaScript's
    safe range as strings, they are read back as ints here."""
    return {t["key"]: int(t["value"]) if t["type"] == "int64" else t["value"]
            for t in obj.get("tags") or obj.get("fields") or []}


def export_and_query(jaeger, protocol: str, service: str, trace_id: int):
    """The SDK spans, exported by otelplug over ``protocol``; and the trace
    as Jaeger's query API returns it once every span is there."""
    spans = sdk_spans(service, trace_id)
    cfg = {"protocol": protocol, "endpoint": endpoint(jaeger, protocol),
           "sending_queue": {"enabled": False}, "retry_on_failure": {"enabled": False}}
    if protocol == "otlp_grpc":
        cfg["tls"] = {"insecure": True}
    exporter = make(jaeger_exporter.factory, cfg, signal="traces")
    exporter.start(None)
    try:
        exporter.consume(records_from_spans(spans))
    finally:
        exporter.shutdown()
    q = jaeger.query
    got = run.wait_for(lambda: (t := q.trace(trace_id)) and len(t["spans"]) == len(spans) and t,
                       30, lambda: f"{len(spans)} spans of trace {trace_id:032x} in Jaeger\n"
                       f"{jaeger.program.output()}")
    return spans, got


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_jaeger_query_returns_what_was_exported(jaeger, protocol):
    service = f"checkout-{protocol.replace('_', '-')}"
    trace_id = (PROTOCOLS[protocol] << 120) | 0x0AF7651916CD43DD8448EB211C8031
    spans, got = export_and_query(jaeger, protocol, service, trace_id)
    q = jaeger.query
    by_id = {int(s["spanID"], 16): s for s in got["spans"]}
    assert set(by_id) == {s.context.span_id for s in spans}
    for sdk in spans:
        js = by_id[sdk.context.span_id]
        where = f"{protocol} span {sdk.name!r}"
        assert js["operationName"] == sdk.name, where
        assert int(js["traceID"], 16) == trace_id, where
        assert js["startTime"] == sdk.start_time // 1000, where
        assert js["duration"] == (sdk.end_time - sdk.start_time) // 1000, where
        process = got["processes"][js["processID"]]
        assert process["serviceName"] == service, where
        ptags = tags(process)
        assert ptags["host.name"] == "h1" and ptags["pod.count"] == 3, (where, ptags)
        t = tags(js)
        for key, value in sdk.attributes.items():
            if not isinstance(value, tuple):
                assert t.get(key) == value, (where, key, t)
        if sdk.kind != SpanKind.INTERNAL:
            assert t.get("span.kind") == KINDS[sdk.kind], (where, t)
        assert t.get("otel.scope.name") == "shop.tracer", (where, t)
        assert t.get("otel.scope.version") == "2.0.1", (where, t)
        if sdk.status.status_code == StatusCode.ERROR:
            assert t.get("error") is True, (where, t)
            assert t.get("otel.status_code") == "ERROR", (where, t)
            assert t.get("otel.status_description") == sdk.status.description, (where, t)
        else:
            assert "error" not in t, (where, t)
        if sdk.status.status_code == StatusCode.OK:
            assert t.get("otel.status_code") == "OK", (where, t)
        # references: the parent (CHILD_OF), links (FOLLOWS_FROM)
        refs = [(r["refType"], int(r["traceID"], 16), int(r["spanID"], 16))
                for r in js.get("references") or []]
        assert ("CHILD_OF", trace_id, sdk.parent.span_id) in refs, (where, refs)
        for link in sdk.links:
            assert ("FOLLOWS_FROM", link.context.trace_id, link.context.span_id) in refs, (where, refs)
        assert len(refs) == 1 + len(sdk.links), (where, refs)
        # events -> logs with an "event" field and the attributes
        logs = [(lg["timestamp"], tags(lg)) for lg in js.get("logs") or []]
        assert len(logs) == len(sdk.events), (where, logs)
        for (ts, fields), event in zip(sorted(logs, key=lambda x: x[0]),
                                       sorted(sdk.events, key=lambda e: e.timestamp)):
            assert ts == event.timestamp // 1000, where
            assert fields.get("event") == event.name, (where, fields)
            for key, value in event.attributes.items():
                assert fields.get(key) == value, (where, key, fields)

    root = next(s for s in spans if s.name == "GET /cart")
    assert root.parent.span_id == REMOTE_PARENT_ID
    db = next(s for s in spans if s.name == "db.query")
    assert db.links[0].context.span_id == LINKED_SPAN_ID

    assert service in q.services()
    ops = {(o["name"], o["spanKind"]) for o in q.operations(service)}
    want_ops = {(s.name, KINDS[s.kind]) for s in spans}
    assert ops == want_ops


@pytest.mark.parametrize("protocol", ["thrift_http", "thrift_compact"])
def test_thrift_translation_matches_jaegers_own(jaeger, protocol):
    """otelplug translates to Thrift itself; Jaeger translates OTLP itself.
    The same spans through both must read back the same: every tag
    (arrays included, as Jaeger writes them), log and process tag."""
    def read(proto, marker):
        trace_id = (marker << 120) | 0x1234
        _, got = export_and_query(jaeger, proto, "same-" + proto.replace("_", "-"), trace_id)
        out = {}
        for js in got["spans"]:
            process = got["processes"][js["processID"]]
            out[js["operationName"]] = {
                "tags": tags(js),
                "logs": sorted(sorted(tags(lg).items()) for lg in js.get("logs") or []),
                "process": {k: v for k, v in tags(process).items()},
                "flags": js.get("flags"), "warnings": js.get("warnings")}
        return out
    theirs = read("otlp_http", 0x55)
    ours = read(protocol, 0x66 if protocol == "thrift_http" else 0x77)
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name] == theirs[name], name


def test_array_and_map_tags_are_written_as_gos_json():
    """What the Thrift paths must match, without Jaeger: Go's encoding/json
    (pcommon's AsString) writes integral floats without ".0", exponents
    without padding, map keys sorted, and escapes <, > and &."""
    from otelplug.sidecar.exporters.jaeger.translate import tag
    value = dict((field[0], field[2]) for field in tag("a", (0.5, -2.0, 1e21, 1e-7, 1e16)))[3]
    assert value == "[0.5,-2,1e+21,1e-7,10000000000000000]"
    value = dict((field[0], field[2]) for field in tag("m", {"b": ["<&>"], "a": True}))[3]
    assert value == '{"a":true,"b":["\\u003c\\u0026\\u003e"]}'
