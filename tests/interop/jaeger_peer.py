"""Jaeger v2 (all-in-one, in-memory storage) for interop tests: every
listener on 127.0.0.1 with an OS-picked port, and a small client for its
query API (the HTTP JSON API the UI uses)."""
from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from types import SimpleNamespace

from tests.peers import run

# Jaeger's file-based sampling strategies (the format of its
# sampling-strategies.json); served by the remote_sampling extension.
STRATEGIES = {
    "default_strategy": {"type": "probabilistic", "param": 0.25},
    "service_strategies": [
        {"service": "checkout", "type": "probabilistic", "param": 0.5,
         "operation_strategies": [{"operation": "GET /cart", "type": "probabilistic", "param": 0.8}]},
    ],
}


def config(ports: dict, strategies: Path) -> str:
    return f"""
service:
  extensions: [jaeger_storage, jaeger_query, remote_sampling]
  pipelines:
    traces:
      receivers: [otlp, jaeger]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics: {{level: none}}
    logs: {{level: info}}
extensions:
  jaeger_storage:
    backends:
      memstore: {{memory: {{max_traces: 10000}}}}
  jaeger_query:
    storage: {{traces: memstore}}
    http: {{endpoint: 127.0.0.1:{ports['query_http']}}}
    grpc: {{endpoint: 127.0.0.1:{ports['query_grpc']}}}
  remote_sampling:
    file: {{path: {strategies}}}
    http: {{endpoint: 127.0.0.1:{ports['sampling_http']}}}
    grpc: {{endpoint: 127.0.0.1:{ports['sampling_grpc']}}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: 127.0.0.1:{ports['otlp_grpc']}}}
      http: {{endpoint: 127.0.0.1:{ports['otlp_http']}}}
  jaeger:
    protocols:
      thrift_http: {{endpoint: 127.0.0.1:{ports['thrift_http']}}}
      thrift_compact: {{endpoint: 127.0.0.1:{ports['thrift_compact']}}}
processors:
  batch: {{timeout: 50ms}}
exporters:
  jaeger_storage_exporter: {{trace_storage: memstore}}
"""


def start(workdir: Path):
    tcp = ("query_http", "query_grpc", "sampling_http", "sampling_grpc", "otlp_grpc", "otlp_http",
           "thrift_http")
    ports = {name: run.free_port() for name in tcp}
    ports["thrift_compact"] = run.free_port(socket.SOCK_DGRAM)
    strategies = Path(workdir) / "strategies.json"
    strategies.write_text(json.dumps(STRATEGIES))
    program = run.jaeger(config(ports, strategies), workdir, ports=[ports[n] for n in tcp])
    return SimpleNamespace(program=program, ports=ports, query=Query(ports["query_http"]))


class Query:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str):
        """(status, decoded JSON body)."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, None

    def trace(self, trace_id: int):
        status, body = self.get(f"/api/traces/{trace_id:032x}")
        return body["data"][0] if status == 200 and body and body.get("data") else None

    def services(self) -> list[str]:
        return self.get("/api/services")[1]["data"] or []

    def operations(self, service: str) -> list[dict]:
        return self.get(f"/api/operations?service={service}")[1]["data"] or []
