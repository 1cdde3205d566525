"""The loopback control endpoint of the alerts extension (what
``otelplug alerts`` talks to).  JSON over HTTP:

- ``GET /api/alerts``, ``GET /api/silences``, ``GET /api/rules``, ``GET /api/events``
- ``POST /api/alerts/<id>/ack`` ``{"by", "note", "expires": seconds}``
- ``POST /api/alerts/<id>/resolve`` ``{"by", "note"}``
- ``POST /api/silences`` ``{"matchers": {...}, "duration": seconds, "by", "comment"}``

It calls the engine through ``AlertControl`` (otelplug/analytics/alerts.py),
the same interface the sidecar's HTTP API can call.
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from otelplug.analytics.alerts import UnknownAlert

from ...helpers.http_server import split_endpoint

log = logging.getLogger("otelplug.sidecar")
_MAX_BODY = 1 << 16


def handle(control, events, method: str, path: str, body: dict) -> tuple[int, object]:
    parts = [p for p in path.split("/") if p]
    if parts[:1] != ["api"]:
        return 404, {"error": "not found"}
    parts = parts[1:]
    try:
        if method == "GET" and parts == ["alerts"]:
            return 200, control.list_alerts()
        if method == "GET" and parts == ["silences"]:
            return 200, control.silences()
        if method == "GET" and parts == ["rules"]:
            return 200, control.rules_status()
        if method == "GET" and parts == ["events"]:
            return 200, list(events)
        if method == "POST" and len(parts) == 3 and parts[0] == "alerts" and parts[2] == "ack":
            exp = body.get("expires")
            return 200, control.ack(parts[1], str(body.get("by") or "unknown"), str(body.get("note") or ""),
                                    float(exp) if exp else None)
        if method == "POST" and len(parts) == 3 and parts[0] == "alerts" and parts[2] == "resolve":
            return 200, control.resolve(parts[1], str(body.get("by") or "unknown"), str(body.get("note") or ""))
        if method == "POST" and parts == ["silences"]:
            return 200, control.silence(dict(body.get("matchers") or {}), float(body.get("duration") or 0),
                                        str(body.get("by") or "unknown"), str(body.get("comment") or ""))
    except UnknownAlert as exc:
        return 404, {"error": exc.args[0]}
    except (ValueError, TypeError) as exc:
        return 400, {"error": str(exc)}
    return 404, {"error": f"no {method} {path}"}


class ControlServer:
    def __init__(self, endpoint: str, control, events):
        host, port = split_endpoint(endpoint)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status, obj):
                data = json.dumps(obj, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, method):
                body = {}
                n = int(self.headers.get("Content-Length") or 0)
                if n > _MAX_BODY:
                    return self._reply(413, {"error": "request too large"})
                if n:
                    try:
                        body = json.loads(self.rfile.read(n))
                    except ValueError as exc:
                        return self._reply(400, {"error": f"body is not JSON: {exc}"})
                    if not isinstance(body, dict):
                        return self._reply(400, {"error": "body must be a JSON object"})
                try:
                    status, obj = handle(control, events, method, self.path.split("?")[0], body)
                except Exception:
                    log.exception("alerts control: %s %s failed", method, self.path)
                    status, obj = 500, {"error": "internal error"}
                self._reply(status, obj)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def log_message(self, *args):
                pass

        try:
            self.server = ThreadingHTTPServer((host or "127.0.0.1", port), Handler)
        except OSError as exc:
            raise OSError(exc.errno, f"alerts: cannot listen on {endpoint}: {exc.strerror}") from None
        self.server.daemon_threads = True
        self.address = "%s:%d" % self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                        name="alerts-control", daemon=True)

    def start(self) -> "ControlServer":
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
