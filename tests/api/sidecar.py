"""A real sidecar process with the api extension, and OTLP traffic sent to
it by the OpenTelemetry SDK's own exporter."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.requirements import require_shared
from tests.waiting import wait_for as poll_until

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"pub": "pub-token-1234", "reader": "read-token-5678", "admin": "admin-token-9abc"}


def config(api_port: int, otlp_port: int, export_endpoint: str, failure_window="2s",
           anonymous_public=True, extra_api: str = "", token_file: str | None = None,
           store: str | None = None) -> str:
    admin = f"file: {token_file}" if token_file else "value: \"${env:API_ADMIN_TOKEN}\""
    return f"""
receivers:
  otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{otlp_port}}}}}}}
  semconv_findings: {{interval: 300ms}}
processors:
  batch: {{timeout: 200ms}}
  semconv: {{registry: {require_shared('semconv-upstream', 'main')}}}
exporters:
  otlp: {{endpoint: {export_endpoint}, tls: {{insecure: true}}, timeout: 1s,
          retry_on_failure: {{enabled: false}}}}
{f'  store: {{url: "duckdb://{store}"}}' if store else ''}
connectors:
  spanmetrics: {{metrics_flush_interval: 1s}}
extensions:
  api:
    endpoint: 127.0.0.1:{api_port}
    anonymous_public: {str(anonymous_public).lower()}
    sample_interval: 200ms
    health: {{failure_window: {failure_window}}}
    tokens:
      - {{name: pub, value: {TOKENS['pub']}, scopes: [public]}}
      - {{name: reader, value: {TOKENS['reader']}, scopes: [read]}}
      - {{name: admin, {admin}, scopes: [admin]}}
{extra_api}
service:
  extensions: [api]
  pipelines:
    traces: {{receivers: [otlp], processors: [semconv, batch], exporters: [otlp, spanmetrics{', store' if store else ''}]}}
    metrics: {{receivers: [spanmetrics], exporters: [otlp]}}
    logs/findings: {{receivers: [semconv_findings], exporters: [otlp]}}
"""


@contextmanager
def sidecar(tmp_path, cfg_text: str, name="sidecar"):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(cfg_text)
    log = open(tmp_path / f"{name}.log", "ab")
    env = dict(os.environ, PYTHONPATH=str(ROOT), API_ADMIN_TOKEN=TOKENS["admin"])
    p = subprocess.Popen([sys.executable, "-m", "otelplug.cli.main", "run", "--config", str(cfg),
                          "--log-level", "info"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


def call(port, path, token=None, method="GET", body=None, scheme="http", context=None):
    """(status, parsed JSON) of one request."""
    req = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else
                                 (b"" if method == "POST" else None))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def wait_for(fn, what: str, timeout=30.0, proc=None, log_path=None):
    """Poll ``fn`` until it returns something truthy (tests/waiting.py); if
    the sidecar exits meanwhile, the failure shows the log's tail."""
    def check():
        if proc is not None and proc.poll() is not None:
            tail = log_path.read_text()[-3000:] if log_path else ""
            raise AssertionError(f"sidecar exited ({proc.returncode}) while waiting for {what}:\n{tail}")
        return fn()
    return poll_until(check, timeout, what, interval=0.1)


def wait_api(port, proc, log_path):
    """Until every component has started (health leaves ``starting``)."""
    def ready():
        code, st = call(port, "/api/v1/status", TOKENS["reader"])
        return code == 200 and st["health"]["status"] != "starting"
    return wait_for(ready, "the API", proc=proc, log_path=log_path)


def send_spans(otlp_port: int, service: str, n_ok: int, n_err: int, attrs=None):
    """Spans from the SDK through its OTLP/HTTP exporter (a real client)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    tp = TracerProvider(resource=Resource.create({"service.name": service, "host.name": "secret-host-7",
                                                  "process.pid": 424242}))
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{otlp_port}/v1/traces")))
    tr = tp.get_tracer("tests.api")
    ids = []
    for i in range(n_ok + n_err):
        with tr.start_as_current_span("GET /secret/path", attributes={
                "http.method": "GET", "user.email": "leak@example.com",
                "server.address": "db.internal.example", **(attrs or {})}) as s:
            ids.append(format(s.get_span_context().trace_id, "032x"))
            if i >= n_ok:
                s.set_status(Status(StatusCode.ERROR, "boom"))
    tp.force_flush()
    tp.shutdown()
    return ids
