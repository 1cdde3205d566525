"""A stand-in OTLP backend for tests: the independent peer.

Built only from ``opentelemetry-proto``, ``grpcio`` and ``http.server`` (no
otelplug code), so what it records is what any OTLP server would have
understood.  It serves OTLP/gRPC and OTLP/HTTP (protobuf or OTLP-JSON,
gzip/deflate) on 127.0.0.1 with ports picked by the OS, records every
accepted request as a decoded Export*ServiceRequest, and can be told to
fail for a while (gRPC UNAVAILABLE / HTTP 503) to simulate an outage::

    with OTLPSink() as sink:
        ... point an exporter at sink.grpc_endpoint or sink.http_endpoint ...
        sink.fail(requests=3)            # the next 3 requests fail
        sink.fail(seconds=2.0)           # everything fails for 2 s
        assert sink.wait_for(lambda: sink.span_count() >= 10, timeout=10)
"""
from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import zlib
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as _logs
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as _metrics
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as _trace

SIGNALS = {
    "traces": ("opentelemetry.proto.collector.trace.v1.TraceService", "/v1/traces",
               _trace.ExportTraceServiceRequest, _trace.ExportTraceServiceResponse),
    "metrics": ("opentelemetry.proto.collector.metrics.v1.MetricsService", "/v1/metrics",
                _metrics.ExportMetricsServiceRequest, _metrics.ExportMetricsServiceResponse),
    "logs": ("opentelemetry.proto.collector.logs.v1.LogsService", "/v1/logs",
             _logs.ExportLogsServiceRequest, _logs.ExportLogsServiceResponse),
}
_PATH_SIGNAL = {path: sig for sig, (_, path, _, _) in SIGNALS.items()}
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


@dataclass
class Received:
    signal: str
    transport: str            # "grpc" or "http"
    request: object           # Export*ServiceRequest
    headers: dict = field(default_factory=dict)   # HTTP headers / gRPC metadata, lower-case keys
    encoding: str = "proto"   # "proto" or "json" (HTTP)
    at: float = 0.0           # time.monotonic()


class OTLPSink:
    def __init__(self, grpc_enabled: bool = True, http_enabled: bool = True, grpc_port: int = 0):
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.failed_requests = 0       # answered with a failure (fail())
        self.attempts = 0              # every export request, failed or not
        self._fail_left = 0
        self._fail_until = 0.0
        self._fail_grpc = grpc.StatusCode.UNAVAILABLE
        self._fail_http = 503
        self._retry_after: int | None = None
        self._grpc_enabled, self._http_enabled = grpc_enabled, http_enabled
        self._grpc_server = None
        self._http_server = None
        self.grpc_port = grpc_port or None   # a fixed port: a restarted sink comes back on it
        self.http_port = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> "OTLPSink":
        if self._grpc_enabled:
            self._start_grpc()
        if self._http_enabled:
            self._start_http()
        return self

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(0).wait()
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None

    def __enter__(self) -> "OTLPSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def grpc_endpoint(self) -> str:
        """host:port, for gRPC exporters (insecure)."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """Base URL, for HTTP exporters (append /v1/traces etc. where needed)."""
        return f"http://127.0.0.1:{self.http_port}"

    # -- failure injection ---------------------------------------------------------
    def fail(self, requests: int = 0, seconds: float = 0.0, grpc_code=grpc.StatusCode.UNAVAILABLE,
             http_status: int = 503, retry_after: int | None = None) -> None:
        """Fail the next ``requests`` requests and/or every request for the
        next ``seconds``; ``fail()`` with neither clears any failure."""
        with self._lock:
            self._fail_left = requests
            self._fail_until = time.monotonic() + seconds if seconds else 0.0
            self._fail_grpc, self._fail_http, self._retry_after = grpc_code, http_status, retry_after

    def _should_fail(self) -> bool:
        with self._lock:
            self.attempts += 1
            failing = False
            if self._fail_left > 0:
                self._fail_left -= 1
                failing = True
            elif time.monotonic() < self._fail_until:
                failing = True
            if failing:
                self.failed_requests += 1
            return failing

    def _record(self, item: Received) -> None:
        with self._lock:
            self._received.append(item)

    # -- what arrived ------------------------------------------------------------
    def received(self, signal: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if signal is None or r.signal == signal]

    def requests(self, signal: str) -> list:
        return [r.request for r in self.received(signal)]

    def spans(self) -> list:
        return [s for req in self.requests("traces") for rs in req.resource_spans
                for ss in rs.scope_spans for s in ss.spans]

    def log_records(self) -> list:
        return [r for req in self.requests("logs") for rl in req.resource_logs
                for sl in rl.scope_logs for r in sl.log_records]

    def metrics(self) -> list:
        return [m for req in self.requests("metrics") for rm in req.resource_metrics
                for sm in rm.scope_metrics for m in sm.metrics]

    def span_count(self) -> int:
        return len(self.spans())

    def log_count(self) -> int:
        return len(self.log_records())

    def data_point_count(self) -> int:
        n = 0
        for m in self.metrics():
            kind = m.WhichOneof("data")
            if kind:
                n += len(getattr(m, kind).data_points)
        return n

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self.attempts = self.failed_requests = 0

    def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
        """Poll ``predicate()`` until true (returns True) or ``timeout`` s pass (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    # -- gRPC ------------------------------------------------------------------------
    def _start_grpc(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                             options=[("grpc.so_reuseport", 0),
                                      ("grpc.max_receive_message_length", 64 << 20)])
        for signal, (service, _, req_cls, resp_cls) in SIGNALS.items():
            handler = grpc.unary_unary_rpc_method_handler(
                self._grpc_export(signal), request_deserializer=req_cls.FromString,
                response_serializer=resp_cls.SerializeToString)
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {"Export": handler}),))
        self.grpc_port = server.add_insecure_port(f"127.0.0.1:{self.grpc_port or 0}")
        server.start()
        self._grpc_server = server

    def _grpc_export(self, signal: str):
        resp_cls = SIGNALS[signal][3]

        def export(request, context):
            if self._should_fail():
                if self._retry_after is not None:
                    context.set_trailing_metadata((("retry-after", str(self._retry_after)),))
                context.abort(self._fail_grpc, "sink told to fail")
            meta = {k.lower(): v for k, v in context.invocation_metadata()}
            self._record(Received(signal, "grpc", request, meta, "proto", time.monotonic()))
            return resp_cls()

        return export

    # -- HTTP ------------------------------------------------------------------------
    def _start_http(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", ctype="text/plain", extra=()):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                signal = _PATH_SIGNAL.get(self.path.split("?")[0])
                if signal is None:
                    return self._reply(404, b"not found")
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                enc = (self.headers.get("Content-Encoding") or "").strip().lower()
                try:
                    if enc == "gzip":
                        body = gzip.decompress(body)
                    elif enc == "deflate":
                        body = zlib.decompress(body)
                    _, _, req_cls, resp_cls = SIGNALS[signal]
                    if ctype == "application/json":
                        request = json_format.ParseDict(_hex_ids_to_base64(json.loads(body)), req_cls(),
                                                        ignore_unknown_fields=True)
                    elif ctype == "application/x-protobuf":
                        request = req_cls.FromString(body)
                    else:
                        return self._reply(415, b"unsupported media type")
                except Exception as exc:
                    return self._reply(400, str(exc).encode())
                if sink._should_fail():
                    extra = [("Retry-After", str(sink._retry_after))] if sink._retry_after is not None else []
                    return self._reply(sink._fail_http, b"sink told to fail", extra=extra)
                headers = {k.lower(): v for k, v in self.headers.items()}
                encoding = "json" if ctype == "application/json" else "proto"
                sink._record(Received(signal, "http", request, headers, encoding, time.monotonic()))
                if encoding == "json":
                    return self._reply(200, b"{}", "application/json")
                return self._reply(200, resp_cls().SerializeToString(), "application/x-protobuf")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.http_port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         name="otlp-sink-http", daemon=True).start()
        self._http_server = server


def _hex_ids_to_base64(obj):
    """OTLP-JSON writes trace/span ids as hex; protobuf's JSON mapping wants base64."""
    if isinstance(obj, dict):
        return {k: (base64.b64encode(bytes.fromhex(v)).decode() if k in _ID_KEYS and isinstance(v, str)
                    else _hex_ids_to_base64(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_hex_ids_to_base64(v) for v in obj]
    return obj
