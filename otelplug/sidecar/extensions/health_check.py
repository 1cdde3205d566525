"""health_check: HTTP liveness/readiness on 127.0.0.1:13133 (the
Collector's health_check extension: endpoint, path)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from otelplug import implementation

from ..component import Factory, Kind
from ..config.transport import endpoint_errors


@dataclass
class HealthCheckConfig:
    """``endpoint``: ``host:port`` of the health endpoint.

    ``path``: the URL path answering 200 when the sidecar is ready, 503 if not.
    """
    endpoint: str = "127.0.0.1:13133"
    path: str = "/"

    def validate(self):
        return endpoint_errors(self.endpoint)


class HealthCheck:
    def __init__(self, settings, config: HealthCheckConfig):
        self.config = config
        self.status = "starting"
        self.server = None

    def claims(self) -> list[str]:
        """What it holds exclusively while running (see Service.claims)."""
        return [f"tcp {self.config.endpoint}"]

    def start(self, host) -> None:
        from ..helpers.http_server import NOT_FOUND, GetServer, Response

        def respond(path, query, headers):
            if path != self.config.path:
                return NOT_FOUND
            ok = self.status == "ready"
            body = json.dumps({"status": "Server available" if ok else "Server not available",
                               "state": self.status,
                               # "python" in production: the extension is missing
                               "implementation": implementation.SELECTED.name}).encode()
            return Response(200 if ok else 503, "application/json", body)

        self.server = GetServer(self.config.endpoint, respond, "health_check").start()

    def ready(self, ok: bool) -> None:
        if not self.status.startswith("failed"):
            self.status = "ready" if ok else "stopping"

    def failed(self, reason: str) -> None:
        """A component thread died (see sidecar/watchdog.py): unhealthy for good."""
        self.status = f"failed: {reason}"

    def shutdown(self) -> None:
        if self.server:
            self.server.shutdown()


factory = Factory("health_check", Kind.EXTENSION, HealthCheckConfig, HealthCheck)
