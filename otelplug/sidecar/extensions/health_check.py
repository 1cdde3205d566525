"""health_check: HTTP liveness/readiness on 127.0.0.1:13133 (the
Collector's health_check extension: endpoint, path)."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..component import Factory, Kind


@dataclass
class HealthCheckConfig:
    endpoint: str = "127.0.0.1:13133"
    path: str = "/"

    def validate(self):
        host, sep, port = self.endpoint.rpartition(":")
        if not sep or not port.isdigit():
            return [(("endpoint",), f"must be host:port, got {self.endpoint!r}")]
        return []


class HealthCheck:
    def __init__(self, settings, config: HealthCheckConfig):
        self.config = config
        self.status = "starting"
        self.server = None

    def start(self, host) -> None:
        h, _, port = self.config.endpoint.rpartition(":")
        ext = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != ext.config.path:
                    self.send_error(404)
                    return
                ok = ext.status == "ready"
                body = json.dumps({"status": "Server available" if ok else "Server not available",
                                   "state": ext.status}).encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer((h or "127.0.0.1", int(port)), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="health_check", daemon=True).start()

    def ready(self, ok: bool) -> None:
        self.status = "ready" if ok else "stopping"

    def shutdown(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


factory = Factory("health_check", Kind.EXTENSION, HealthCheckConfig, HealthCheck)
