"""jaeger exporter: what it sends is decoded by an independent peer, code
generated at test time from jaeger-idl (../shared/jaeger-idl) by Debian's
thrift-compiler and read with the ``thrift`` package, and compared field by
field with the SDK spans it came from.  thrift_http goes to a local HTTP
server, thrift_compact to a real UDP socket (datagrams within the limit);
the OTLP protocols to the OTLP test sink."""
from __future__ import annotations

import importlib
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.span import SpanContext, TraceFlags, TraceState

from otelplug.sidecar.config.errors import ConfigErrors
from otelplug.sidecar.config.model import load
from otelplug.sidecar.exporters import jaeger
from otelplug.sidecar.factories import Registry
from tests.conftest import SHARED
from tests.otlp_sink import OTLPSink
from tests.requirements import require_executable, require_module, require_shared
from tests.sidecar.helpers import make, records_from_spans

IDL = SHARED / "jaeger-idl"
M64 = (1 << 64) - 1


# -- the independent decoder ---------------------------------------------------------
@pytest.fixture(scope="module")
def idl(tmp_path_factory):
    """The Python modules thrift-compiler generates from jaeger-idl."""
    require_executable("thrift", "apt-get install -y thrift-compiler")
    require_module("thrift", "pip install thrift")
    require_shared("jaeger-idl", "agent.thrift")
    out = tmp_path_factory.mktemp("jaeger-gen")
    subprocess.run(["thrift", "-r", "--gen", "py", "-out", str(out), str(IDL / "agent.thrift")],
                   check=True, capture_output=True, timeout=120)
    sys.path.insert(0, str(out))
    try:
        mods = {n: importlib.import_module(n) for n in ("jaeger.ttypes", "agent.Agent")}
    finally:
        sys.path.remove(str(out))
    yield mods
    for name in [n for n in sys.modules if n.split(".")[0] in ("jaeger", "agent", "zipkincore")]:
        del sys.modules[name]


def decode_binary_batch(idl, body: bytes):
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TTransport
    batch = idl["jaeger.ttypes"].Batch()
    batch.read(TBinaryProtocol.TBinaryProtocol(TTransport.TMemoryBuffer(body)))
    return batch


def decode_emit_batch(idl, datagram: bytes):
    from thrift.protocol import TCompactProtocol
    from thrift.Thrift import TMessageType
    from thrift.transport import TTransport
    proto = TCompactProtocol.TCompactProtocol(TTransport.TMemoryBuffer(datagram))
    name, mtype, seq = proto.readMessageBegin()
    assert (name, mtype) == ("emitBatch", TMessageType.ONEWAY)
    args = idl["agent.Agent"].emitBatch_args()
    args.read(proto)
    proto.readMessageEnd()
    return args.batch, seq


# -- source spans and the expected mapping, written from the SDK objects -------------------
def sdk_spans(n_plain=3, pad=0):
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "checkout", "host.name": "h1",
                                                  "pod.count": 3}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tr = tp.get_tracer("shop.tracer", "2.0.1")
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("ot", "th:8")]))
    with tr.start_as_current_span(
            "GET /cart", context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
            kind=SpanKind.SERVER,
            attributes={"s": "ünï", "b": True, "i": -(2**63), "f": 1.5, "raw": b"\x00\xff",
                        "sa": ["a", "b"], "ia": [1, 2]}) as root:
        root.add_event("cache.miss", {"key": "k1", "size": 10})
        root.add_event("event-with-own-name", {"event": "custom"})
        link_a = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(0))
        link_b = SpanContext(0xFEDCBA9876543210FEDCBA9876543210, 0xFFFFFFFFFFFFFFF1, is_remote=True)
        with tr.start_as_current_span("db.query", kind=SpanKind.CLIENT,
                                      links=[Link(link_a, {"why": "batch"}),
                                             Link(link_b, {"opentracing.ref_type": "child_of"})]
                                      ) as child:
            child.set_status(Status(StatusCode.ERROR, "timeout"))
        for kind in (SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER):
            with tr.start_as_current_span(f"k{kind.value}", kind=kind) as s:
                s.set_status(Status(StatusCode.OK))
        for i in range(n_plain):
            with tr.start_as_current_span(f"plain{i}", attributes={"pad": "x" * pad, "n": i}):
                pass
    return list(mem.get_finished_spans())


def s64(v):
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def tag_tuple(t):
    value = {0: t.vStr, 1: t.vDouble, 2: t.vBool, 3: t.vLong, 4: t.vBinary}[t.vType]
    return (t.key, t.vType, value)


def want_tag(key, v):
    if isinstance(v, bool):
        return (key, 2, v)
    if isinstance(v, int):
        return (key, 3, v)
    if isinstance(v, float):
        return (key, 1, v)
    if isinstance(v, bytes):
        return (key, 4, v)
    if isinstance(v, str):
        return (key, 0, v)
    return (key, 0, json.dumps(list(v), separators=(",", ":")))


def want_span(span):
    ctx = span.context
    kind = {SpanKind.SERVER: "server", SpanKind.CLIENT: "client", SpanKind.PRODUCER: "producer",
            SpanKind.CONSUMER: "consumer", SpanKind.INTERNAL: "internal"}[span.kind]
    tags = [("otel.scope.name", 0, "shop.tracer"), ("otel.scope.version", 0, "2.0.1")]
    tags += [want_tag(k, v) for k, v in span.attributes.items()]
    tags.append(("span.kind", 0, kind))
    code = span.status.status_code
    if code == StatusCode.OK:
        tags.append(("otel.status_code", 0, "OK"))
    if code == StatusCode.ERROR:
        tags += [("otel.status_code", 0, "ERROR"), ("error", 2, True)]
    if span.status.description:
        tags.append(("otel.status_description", 0, span.status.description))
    if ctx.trace_state:
        tags.append(("w3c.tracestate", 0, ctx.trace_state.to_header()))
    refs = []
    if span.parent is not None:
        refs.append((0, s64(ctx.trace_id), s64(ctx.trace_id >> 64), s64(span.parent.span_id)))
    for lk in span.links:
        rt = 0 if lk.attributes.get("opentracing.ref_type") == "child_of" else 1
        refs.append((rt, s64(lk.context.trace_id), s64(lk.context.trace_id >> 64),
                     s64(lk.context.span_id)))
    logs = []
    for e in span.events:
        fields = [] if "event" in e.attributes else [("event", 0, e.name)]
        fields += [want_tag(k, v) for k, v in e.attributes.items()]
        logs.append((e.timestamp // 1000, fields))
    return dict(traceIdLow=s64(ctx.trace_id), traceIdHigh=s64(ctx.trace_id >> 64),
                spanId=s64(ctx.span_id),
                parentSpanId=s64(span.parent.span_id) if span.parent else 0,
                operationName=span.name, flags=int(ctx.trace_flags) & 1,
                startTime=span.start_time // 1000,
                duration=(span.end_time - span.start_time) // 1000,
                tags=tags, references=refs, logs=logs)


def got_span(js):
    return dict(traceIdLow=js.traceIdLow, traceIdHigh=js.traceIdHigh, spanId=js.spanId,
                parentSpanId=js.parentSpanId, operationName=js.operationName, flags=js.flags,
                startTime=js.startTime, duration=js.duration,
                tags=[tag_tuple(t) for t in js.tags or []],
                references=[(r.refType, r.traceIdLow, r.traceIdHigh, r.spanId)
                            for r in js.references or []],
                logs=[(lg.timestamp, [tag_tuple(t) for t in lg.fields]) for lg in js.logs or []])


def check_process(p):
    assert p.serviceName == "checkout"
    tags = {t.key: tag_tuple(t) for t in p.tags}
    assert tags["host.name"] == ("host.name", 0, "h1")
    assert tags["pod.count"] == ("pod.count", 3, 3)
    assert tags["telemetry.sdk.language"] == ("telemetry.sdk.language", 0, "python")
    assert "service.name" not in tags


def exporter(**cfg):
    cfg.setdefault("sending_queue", {"enabled": False})
    cfg.setdefault("retry_on_failure", {"enabled": False})
    return make(jaeger.factory, cfg, signal="traces")


# -- thrift_http --------------------------------------------------------------------
class ThriftHTTPServer:
    def __init__(self, status=202):
        self.posts = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((self.path, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/api/traces" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_thrift_http_batches_decode_field_by_field(idl):
    spans = sdk_spans()
    srv = ThriftHTTPServer()
    exp = exporter(protocol="thrift_http", endpoint=srv.url)
    exp.start(None)
    try:
        exp.consume(records_from_spans(spans))
    finally:
        exp.shutdown()
        srv.close()
    assert len(srv.posts) == 1
    path, headers, body = srv.posts[0]
    assert path == "/api/traces"
    assert headers["Content-Type"] == "application/x-thrift"
    batch = decode_binary_batch(idl, body)
    check_process(batch.process)
    assert [got_span(s) for s in batch.spans] == [want_span(s) for s in spans]
    # spot checks of what the mapping means, beyond equality with the rule above
    by_name = {s.operationName: s for s in batch.spans}
    db = got_span(by_name["db.query"])
    assert ("error", 2, True) in db["tags"]
    assert [r[0] for r in db["references"]] == [0, 1, 0]     # parent, link, child_of link
    root = got_span(by_name["GET /cart"])
    assert root["logs"][0][1][0] == ("event", 0, "cache.miss")
    assert root["logs"][1][1] == [("event", 0, "custom")]   # the attribute wins
    assert root["flags"] == 1 and root["traceIdHigh"] == s64(0x0AF7651916CD43DD)


def test_thrift_http_server_errors_are_classified():
    from otelplug.sidecar.helpers.exporter import Permanent, Retryable
    spans = sdk_spans(0)
    for status, exc in ((503, Retryable), (400, Permanent)):
        srv = ThriftHTTPServer(status)
        exp = exporter(protocol="thrift_http", endpoint=srv.url)
        try:
            with pytest.raises(exc):
                exp.send(records_from_spans(spans), 5)
        finally:
            srv.close()


# -- thrift_compact -----------------------------------------------------------------
def receive_all(sock, expect_more=0.5):
    sock.settimeout(expect_more)
    got = []
    while True:
        try:
            got.append(sock.recv(70000))
        except socket.timeout:
            return got


@pytest.mark.parametrize("limit,pad", [(65000, 20000), (1500, 300)])
def test_thrift_compact_datagrams_fit_and_decode(idl, limit, pad):
    spans = sdk_spans(n_plain=40, pad=pad)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.bind(("127.0.0.1", 0))
    exp = exporter(protocol="thrift_compact", endpoint="127.0.0.1:%d" % rx.getsockname()[1],
                   max_packet_size=limit)
    exp.start(None)
    try:
        exp.consume(records_from_spans(spans))
        datagrams = receive_all(rx)
    finally:
        exp.shutdown()
        rx.close()
    assert len(datagrams) == exp.datagrams_sent > 1
    assert all(len(d) <= limit for d in datagrams)
    got, seqs = [], []
    for d in datagrams:
        batch, seq = decode_emit_batch(idl, d)
        check_process(batch.process)
        assert batch.seqNo == seq
        seqs.append(seq)
        got += batch.spans
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [got_span(s) for s in got] == [want_span(s) for s in spans]


def test_thrift_compact_drops_a_span_larger_than_a_datagram(idl):
    spans = sdk_spans(n_plain=2, pad=3000)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    exp = exporter(protocol="thrift_compact", endpoint="127.0.0.1:%d" % rx.getsockname()[1],
                   max_packet_size=2000)
    exp.start(None)
    try:
        exp.consume(records_from_spans(spans))
        datagrams = receive_all(rx)
    finally:
        exp.shutdown()
        rx.close()
    assert exp.dropped_too_large == 2
    names = [s.operationName for d in datagrams for s in decode_emit_batch(idl, d)[0].spans]
    assert names == [s.name for s in spans if not s.name.startswith("plain")]


# -- OTLP ------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["otlp_http", "otlp_grpc"])
def test_otlp_protocols_use_the_otlp_send_path(protocol):
    spans = sdk_spans(n_plain=2)
    with OTLPSink() as sink:
        ep = sink.http_endpoint if protocol == "otlp_http" else sink.grpc_endpoint
        cfg = {"protocol": protocol, "endpoint": ep}
        if protocol == "otlp_grpc":
            cfg["tls"] = {"insecure": True}
        exp = exporter(**cfg)
        exp.start(None)
        try:
            exp.consume(records_from_spans(spans))
            assert sink.wait_for(lambda: sink.span_count() == len(spans), timeout=20)
        finally:
            exp.shutdown()
    assert sorted(s.name for s in sink.spans()) == sorted(s.name for s in spans)


# -- config -----------------------------------------------------------------------------
def config_errors(exporter_yaml: str) -> str:
    text = f"""
receivers: {{shm: {{}}}}
exporters:
  jaeger:
{exporter_yaml}
service:
  pipelines:
    traces: {{receivers: [shm], exporters: [jaeger]}}
"""
    from otelplug.sidecar.receivers import shm
    with pytest.raises(ConfigErrors) as ei:
        load("j.yaml", Registry([shm.factory, jaeger.factory]), text=text)
    return str(ei.value)


def test_config_errors_name_the_field():
    msg = config_errors("    protocol: thrift_udp")
    assert "exporters::jaeger::protocol" in msg and "thrift_udp" in msg
    msg = config_errors("    protocol: thrift_compact\n    max_packet_size: 70000")
    assert "exporters::jaeger::max_packet_size" in msg
    msg = config_errors("    protocol: thrift_http\n    endpoint: 127.0.0.1:14268")
    assert "exporters::jaeger::endpoint" in msg and "http://" in msg
    msg = config_errors("    protocol: thrift_compact\n    endpoint: http://agent")
    assert "exporters::jaeger::endpoint" in msg and "host:port" in msg


def test_defaults():
    cfg = jaeger.JaegerConfig()
    assert cfg.protocol == "otlp_http" and cfg.max_packet_size == 65000
    assert jaeger.JaegerConfig(protocol="thrift_compact").resolved_endpoint() == "127.0.0.1:6831"
