"""health_check: HTTP liveness/readiness on 127.0.0.1:13133 (the
Collector's health_check extension: endpoint, path)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from otelplug import implementation

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
