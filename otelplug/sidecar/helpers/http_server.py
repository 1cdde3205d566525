"""A small threaded HTTP server for the sidecar's read-only endpoints
(self-metrics, health_check, the sampling API, the Prometheus exporter).

Callers give an endpoint ("host:port"; they default to 127.0.0.1) and one
function ``respond(path, query, headers) -> Response``.  The server does the
rest the same way everywhere: HTTP/1.1 keep-alive, gzip when the client asks
and the body is worth it, a 500 (logged) when ``respond`` fails, no access
log lines.
"""
from __future__ import annotations

import gzip
import logging
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..config.transport import split_endpoint

log = logging.getLogger("otelplug.sidecar")
_POLL_INTERVAL = 0.05


@dataclass
class Response:
    status: int = 200
    content_type: str = "text/plain; charset=utf-8"
    body: bytes = b""
    headers: dict = field(default_factory=dict)


# socketserver's default listen backlog is 5: a burst of new connections
# (a Prometheus fleet scraping, 300 clients reconnecting at once) then gets
# resets.  The kernel caps it at net.core.somaxconn anyway.
LISTEN_BACKLOG = 1024


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


class GetServer:
    def __init__(self, endpoint: str, respond, name: str):
        host, port = split_endpoint(endpoint)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body are two writes: without TCP_NODELAY the body of
            # a keep-alive response waits ~40 ms for the client's delayed ACK
            disable_nagle_algorithm = True

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                try:
                    r = respond(url.path, urllib.parse.parse_qs(url.query), self.headers)
                except Exception:
                    log.exception("%s: request for %s failed", name, url.path)
                    r = Response(500, body=b"internal error\n")
                body = r.body
                self.send_response(r.status)
                self.send_header("Content-Type", r.content_type)
                for k, v in r.headers.items():
                    self.send_header(k, v)
                if len(body) > 1024 and "gzip" in (self.headers.get("Accept-Encoding") or ""):
                    body = gzip.compress(body, compresslevel=1)
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        try:
            self.server = _Server((host or "127.0.0.1", port), Handler)
        except OSError as exc:      # say who could not listen where, not just "[Errno 98]"
            raise OSError(exc.errno, f"{name}: cannot listen on {endpoint}: {exc.strerror}") from None
        self.address = "%s:%d" % self.server.server_address[:2]
        # shutdown() waits for the serve loop to notice, up to one poll
        # interval: the default 0.5 s made every stop (and SIGTERM) wait
        # that long per server; an idle wake-up every 50 ms costs nothing
        self._thread = threading.Thread(target=self.server.serve_forever, args=(_POLL_INTERVAL,),
                                        name=name, daemon=True)

    def start(self) -> "GetServer":
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()


NOT_FOUND = Response(404, body=b"not found\n")
