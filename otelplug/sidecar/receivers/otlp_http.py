"""OTLP/HTTP transport of the otlp receiver.

POST of an Export*ServiceRequest to the signal's path, as binary protobuf
(``application/x-protobuf``) or OTLP-JSON (``application/json``), optionally
``Content-Encoding: gzip`` or ``deflate``.  Answers follow the OTLP/HTTP
spec and the Collector:

  200  Export*ServiceResponse, in the request's encoding
  400  undecodable or invalid payload: a google.rpc.Status with the reason
  404  unknown path (or a signal no pipeline takes, as in the Collector)
  405  not POST        411  no body length     413  body over the limit
  415  content type neither protobuf nor JSON
  503  the pipeline refused the data (memory_limiter), with Retry-After
  500  the pipeline failed

Nothing a client sends may stop the server: every request's errors end in
one of these answers (or a closed connection), and sizes are checked before
reading, while reading chunked bodies, and while decompressing (zip bombs).
"""
from __future__ import annotations

import json
import logging
import socket
import socketserver
import ssl
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError

from ..consumer import Refused
from ..config.transport import join_endpoint, split_endpoint
from ..helpers.http_server import LISTEN_BACKLOG
from ..memory import HELD, RECEIVER
from .otlp import REQUEST_DECODE_COST, HTTPServerConfig, Ingest, messages

log = logging.getLogger("otelplug.sidecar")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_AFTER_SECONDS = 1      # what a 503 asks clients to wait before retrying
_SHUTDOWN_GRACE = 5.0
_TURNED_AWAY_LOG_EVERY = 10.0   # s between log lines about requests turned away for memory
# google.rpc.Code of the Status body sent with each HTTP error
_RPC_CODE = {400: 3, 411: 3, 413: 3, 500: 13, 503: 14}


class Reject(Exception):
    """Answer the request with ``status`` and ``message``; ``close`` when
    the body was not (fully) read, so the connection cannot be reused."""

    def __init__(self, status: int, message: str, close: bool = False, headers=(), counted=False):
        super().__init__(message)
        self.status, self.message, self.close, self.headers = status, message, close, tuple(headers)
        self.counted = counted     # already in receiver_invalid_requests


def status_body(code: int, message: str, content_type: str) -> bytes:
    """A google.rpc.Status, written by hand: two fields do not justify a
    dependency on googleapis-common-protos."""
    if content_type == JSON:
        return json.dumps({"code": code, "message": message}).encode()
    msg = message.encode("utf-8", "replace")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(msg)) + msg


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_STEP = 1 << 20    # decompress this much at a time, reserved before it is produced


def decompress(body: bytes, encoding: str, limit: int, reserve=None) -> bytes:
    """Undo ``Content-Encoding``; at most ``limit`` bytes come out (Reject
    413 beyond that, so a small bomb cannot fill memory), and anything
    malformed or truncated is a Reject 400.  ``reserve(n)`` is called
    before each step's output exists (and with the unused rest after it),
    so it can refuse the memory before it is allocated."""
    reserve = reserve or (lambda n: None)
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return body
    if enc in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif enc in ("deflate", "zlib"):
        wbits = zlib.MAX_WBITS   # HTTP "deflate" is the zlib format
    else:
        raise Reject(400, f"unsupported Content-Encoding {encoding!r} (supported: gzip, deflate)")
    out = []
    size = 0
    data = body
    try:
        while True:    # gzip allows several members one after another
            d = zlib.decompressobj(wbits)
            while True:
                step = min(_STEP, limit - size + 1)
                reserve(step)
                chunk = d.decompress(data, step)
                reserve(len(chunk) - step)
                data = d.unconsumed_tail
                size += len(chunk)
                if size > limit:
                    raise Reject(413, f"decompressed body exceeds the {limit}-byte limit")
                out.append(chunk)
                # a full step may leave output pending inside zlib even
                # with all input consumed: only a short step means done
                if d.eof or (not data and len(chunk) < step):
                    break
            if not d.eof:
                raise Reject(400, f"malformed {enc} body: truncated")
            data = d.unused_data
            if not data or wbits != 16 + zlib.MAX_WBITS:
                break
        if data:
            raise Reject(400, f"malformed {enc} body: trailing bytes")
    except zlib.error as exc:
        raise Reject(400, f"malformed {enc} body: {exc}") from None
    return b"".join(out)


def _linger(sock, max_bytes: int = 4 << 20, seconds: float = 1.0) -> None:
    """Before closing, read (and drop) what the client is still sending.
    Closing with unread data makes the kernel send a reset, and a client
    still uploading a rejected body (413) would see "connection reset"
    instead of our answer.  Bounded, as Go's net/http does."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(seconds)
        deadline = time.monotonic() + seconds
        while max_bytes > 0 and time.monotonic() < deadline:
            chunk = sock.recv(min(65536, max_bytes))
            if not chunk:
                break
            max_bytes -= len(chunk)
    except OSError:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG     # not socketserver's 5: bursts of new connections

    def __init__(self, address, otlp: "HTTPServer"):
        self.otlp = otlp
        self.connections: set = set()
        self.conn_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self):
        # HTTPServer.server_bind also resolves its FQDN, a DNS lookup that
        # can stall startup and is only used for CGI variables
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    # open connections are tracked so shutdown can close idle keep-alives
    def process_request(self, request, client_address):
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conn_lock:
            self.connections.discard(request)
        _linger(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # a client that vanished or failed the TLS handshake is not news
        log.debug("%s: error on an OTLP/HTTP connection from %s", self.otlp.receiver_id,
                  client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive, as SDK exporters reuse connections
    server_version = "otelplug"
    sys_version = ""

    def setup(self):
        self.timeout = float(self.server.otlp.config.idle_timeout)
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()   # here, not in accept(): a slow client only holds its own thread

    def log_message(self, *args):
        pass

    # -- routing ---------------------------------------------------------------
    def do_POST(self):
        otlp = self.server.otlp
        with otlp.tracking():
            content_type = PROTOBUF
            try:
                if otlp.stopping:
                    raise Reject(503, "the receiver is shutting down", close=True,
                                 headers=[("Retry-After", str(RETRY_AFTER_SECONDS))])
                signal = otlp.signal_for(self._path())
                if signal is None:
                    raise Reject(404, "404 page not found", close=True)
                content_type = self._content_type()
                self._export(otlp, signal, content_type)
            except Reject as r:
                if r.status in (400, 411, 413, 415) and not r.counted:
                    otlp.ingest.invalid("http")
                self._reply_error(r, content_type)
            except (OSError, ssl.SSLError):
                self.close_connection = True        # the client went away or timed out
            except Exception as exc:
                log.exception("%s: OTLP/HTTP request failed", otlp.receiver_id)
                self._reply_error(Reject(500, f"{type(exc).__name__}: {exc}", close=True), content_type)

    def _not_post(self):
        otlp = self.server.otlp
        if otlp.signal_for(self._path()) is None:
            r = Reject(404, "404 page not found", close=True)
        else:
            r = Reject(405, "405 method not allowed, supported: [POST]", close=True,
                       headers=[("Allow", "POST")])
        self._reply_error(r, None)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _not_post

    def _path(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    def _content_type(self) -> str:
        ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype not in (PROTOBUF, JSON):
            raise Reject(415, f"415 unsupported media type, supported: [{JSON}, {PROTOBUF}]",
                         close=True)
        return ctype

    # -- the export --------------------------------------------------------------
    def _export(self, otlp, signal: str, content_type: str) -> None:
        budget = _Budget(otlp)
        try:
            self._export_within(otlp, signal, content_type, budget)
        finally:
            budget.release()

    def _export_within(self, otlp, signal: str, content_type: str, budget: "_Budget") -> None:
        limit = otlp.config.max_request_body_size
        body = self._read_body(limit, budget)
        body = decompress(body, self.headers.get("Content-Encoding", ""), limit, budget.grow)
        budget.grow(len(body) * REQUEST_DECODE_COST)
        _, request_cls, _ = messages(signal)
        try:
            if content_type == JSON:
                from otelplug.otlp import jsonfmt
                request = jsonfmt.parse(body, request_cls)
            else:
                request = request_cls.FromString(body)
        except DecodeError as exc:
            raise Reject(400, f"invalid protobuf: {exc}") from None
        except Exception as exc:       # whatever the JSON was, it was not OTLP
            raise Reject(400, str(exc) or type(exc).__name__) from None
        try:
            response = otlp.ingest.export(signal, request, "http")
        except ValueError as exc:      # InvalidRequest: valid syntax, invalid OTLP
            raise Reject(400, str(exc), counted=True) from None
        except Refused as exc:
            raise Reject(503, str(exc) or "data refused, retry later",
                         headers=[("Retry-After", str(RETRY_AFTER_SECONDS))]) from None
        except Exception as exc:       # logged by Ingest
            raise Reject(500, f"{type(exc).__name__}: {exc}") from None
        if content_type == JSON:
            from otelplug.otlp import jsonfmt
            out = jsonfmt.to_json(response).encode()
        else:
            out = response.SerializeToString()
        self._reply(200, out, content_type)

    def _read_body(self, limit: int, budget: "_Budget") -> bytes:
        te = self.headers.get("Transfer-Encoding", "").strip().lower()
        if te:
            if te != "chunked":
                raise Reject(400, f"unsupported Transfer-Encoding {te!r}", close=True)
            return self._read_chunked(limit, budget)
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise Reject(411, "Content-Length required", close=True)
        declared = declared.strip()
        if not declared.isdigit():
            raise Reject(400, f"invalid Content-Length {declared[:40]!r}", close=True)
        n = int(declared)
        if n > limit:
            raise Reject(413, f"body of {n} bytes exceeds the {limit}-byte limit", close=True)
        try:
            budget.grow(n)
        except Reject:
            self._discard(n)     # read, not kept: the connection stays usable for the retry
            raise
        body = self.rfile.read(n)
        if len(body) < n:
            raise ConnectionError("body shorter than its Content-Length")
        return body

    def _discard(self, n: int) -> None:
        while n > 0:
            got = self.rfile.read(min(n, 1 << 16))
            if not got:
                raise ConnectionError("body shorter than its Content-Length")
            n -= len(got)

    def _read_chunked(self, limit: int, budget: "_Budget") -> bytes:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise Reject(400, "malformed chunked body", close=True)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise Reject(400, "malformed chunk size", close=True) from None
            if size < 0:
                raise Reject(400, "malformed chunk size", close=True)
            if size == 0:
                for _ in range(64):                      # trailers, up to the blank line
                    if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
                raise Reject(400, "too many trailers", close=True)
            total += size
            if total > limit:
                raise Reject(413, f"chunked body exceeds the {limit}-byte limit", close=True)
            try:
                budget.grow(size)
            except Reject as r:
                r.close = True
                raise
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ConnectionError("truncated chunk")
            parts.append(chunk)
            self.rfile.readline(8)                       # the chunk's CRLF

    # -- answers -----------------------------------------------------------------
    def _reply_error(self, r: Reject, content_type: str | None) -> None:
        if r.status in (404, 405, 411, 415) or content_type is None:
            body, ctype = (r.message + "\n").encode(), "text/plain; charset=utf-8"
        else:
            body, ctype = status_body(_RPC_CODE.get(r.status, 2), r.message, content_type), content_type
        self._reply(r.status, body, ctype, r.headers, r.close)

    def _reply(self, status: int, body: bytes, ctype: str, headers=(), close: bool = False) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            self.close_connection = True


class HTTPServer:
    def __init__(self, config: HTTPServerConfig, ingest: Ingest, receiver_id: str):
        self.config = config
        self.ingest = ingest
        self.receiver_id = receiver_id
        self.address = None
        self.stopping = False
        # a signal no pipeline takes has no route: 404, as in the Collector
        self._routes = {p: s for s, p in config.url_paths().items() if ingest.accepts(s)}
        self._in_flight = 0
        self._in_flight_bytes = 0
        self._turned_away = 0
        self._turned_away_logged = -_TURNED_AWAY_LOG_EVERY
        self._bytes_lock = threading.Lock()
        self._holder = f"{RECEIVER}{receiver_id}/http"
        self._idle = threading.Condition()
        self._server = None
        self._thread = None

    def signal_for(self, path: str) -> str | None:
        return self._routes.get(path)

    def reserve(self, n: int, mine: int) -> bool:
        """Take ``n`` more bytes for a request that holds ``mine`` (negative:
        give back).  A request is refused only while others hold bytes too,
        so one request larger than the limits still gets through alone."""
        with self._bytes_lock:
            others = self._in_flight_bytes - mine
            ok = not (n > 0 and others > 0
                      and self._in_flight_bytes + n > self.config.max_in_flight_bytes)
            ok = ok and HELD.try_reserve(self._holder, n, mine)
            if ok:
                self._in_flight_bytes += n
            if not ok:
                self._turned_away += 1
                now = time.monotonic()
                if now - self._turned_away_logged >= _TURNED_AWAY_LOG_EVERY:   # not per request
                    log.warning("%s: turned away %d OTLP/HTTP request(s) with a 503 for memory "
                                "(%d MiB in flight here, %d MiB held in all)", self.receiver_id,
                                self._turned_away, self._in_flight_bytes >> 20, HELD.total >> 20)
                    self._turned_away, self._turned_away_logged = 0, now
            return ok

    def tracking(self):
        return _InFlight(self)

    def start(self) -> None:
        c = self.config
        host, port = split_endpoint(c.endpoint)
        try:
            server = _Server((host, port), self)
        except OSError as exc:
            raise OSError(f"{self.receiver_id}: cannot listen for OTLP/HTTP on {c.endpoint}: {exc}") from None
        if c.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(c.tls.cert_file, c.tls.key_file)
            if c.tls.client_ca_file:
                ctx.load_verify_locations(c.tls.client_ca_file)
                ctx.verify_mode = ssl.CERT_REQUIRED
            server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
        self._server = server
        self.address = join_endpoint(host, server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"{self.receiver_id}-http", daemon=True)
        self._thread.start()
        log.info("%s: OTLP/HTTP on %s", self.receiver_id, self.address)

    def shutdown(self) -> None:
        server = self._server
        if server is None:
            return
        self.stopping = True
        server.shutdown()                      # no new connections
        deadline = time.monotonic() + _SHUTDOWN_GRACE
        with self._idle:                       # requests in flight reach the pipeline
            while self._in_flight and time.monotonic() < deadline:
                self._idle.wait(deadline - time.monotonic())
        with server.conn_lock:                 # idle keep-alive connections
            for conn in list(server.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        server.server_close()
        self._server = None


class _Budget:
    """The bytes one request may use, reserved before they are allocated:
    against the receiver's max_in_flight_bytes and the memory_limiter's
    limit (memory.HELD).  Refused: a 503 the client retries."""

    def __init__(self, owner: "HTTPServer"):
        self.owner = owner
        self.n = 0

    def grow(self, n: int) -> None:
        if not self.owner.reserve(n, self.n):
            raise Reject(503, "the receiver is holding as much data as it may; retry later",
                         headers=[("Retry-After", str(RETRY_AFTER_SECONDS))])
        self.n += n

    def release(self) -> None:
        self.owner.reserve(-self.n, self.n)
        self.n = 0


class _InFlight:
    def __init__(self, owner: HTTPServer):
        self.owner = owner

    def __enter__(self):
        with self.owner._idle:
            self.owner._in_flight += 1

    def __exit__(self, *exc):
        with self.owner._idle:
            self.owner._in_flight -= 1
            self.owner._idle.notify_all()
