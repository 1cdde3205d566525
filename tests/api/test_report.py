"""``otelplug report``: spans with chosen times and durations go through a
real sidecar (semconv annotating violations, file exporter); the reports
over its output find the per-operation percentiles, the regression
against the previous period, usage per service and signal, drops from the
API, error budget and compliance; the HTML is self-contained with SVG."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.requirements import require_shared
from tests.sidecar.test_reliability import free_port

from .sidecar import ROOT, TOKENS, call, sidecar, wait_api, wait_for


def _config(api, otlp, out):
    return f"""
receivers:
  otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{otlp}}}}}}}
processors:
  batch: {{timeout: 100ms}}
  semconv: {{registry: {require_shared('semconv-upstream', 'main')}, actions: {{violation: annotate}}}}
exporters:
  file: {{path: {out}}}
extensions:
  api: {{endpoint: 127.0.0.1:{api}, tokens: [{{name: r, value: {TOKENS['reader']}, scopes: [read]}}]}}
service:
  extensions: [api]
  pipelines:
    traces: {{receivers: [otlp], processors: [semconv, batch], exporters: [file]}}
"""


def _send(otlp, spans):
    """spans: (service, name, start_s, duration_ms, error, deprecated_attr)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    by_service = {}
    for s in spans:
        by_service.setdefault(s[0], []).append(s)
    for service, rows in by_service.items():
        tp = TracerProvider(resource=Resource.create({"service.name": service}))
        tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{otlp}/v1/traces")))
        tr = tp.get_tracer("tests.report")
        for _svc, name, start_s, dur_ms, error, deprecated in rows:
            t0 = int(start_s * 1e9)
            sp = tr.start_span(name, start_time=t0,
                               attributes={"http.method": "GET"} if deprecated else {"http.request.method": "GET"})
            if error:
                sp.set_status(Status(StatusCode.ERROR))
            sp.end(end_time=t0 + int(dur_ms * 1e6))
        tp.shutdown()


def _report(*args):
    r = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "report", *args], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return r


def test_reports(tmp_path):
    api, otlp = free_port(), free_port()
    out = tmp_path / "spans.jsonl"
    t = float(int(time.time()) - 200)         # the report range is [t, t + 100)
    spans = []
    for i in range(100):                      # previous period: checkout /pay at 10..19.9 ms
        spans.append(("checkout", "/pay", t - 100 + i * 0.5, 10 + i * 0.1, False, False))
    for i in range(100):                      # this period: 3x slower, 10% errors, 20% deprecated attrs
        spans.append(("checkout", "/pay", t + i * 0.5, 30 + i * 0.3, i % 10 == 0, i % 5 == 0))
    for i in range(50):
        spans.append(("search", "/q", t + i, 5.0, False, False))
    with sidecar(tmp_path, _config(api, otlp, out)) as p:
        wait_api(api, p, tmp_path / "sidecar.log")
        _send(otlp, spans)
        wait_for(lambda: out.exists() and out.read_text().count('"spanId"') >= len(spans), "spans in the file",
                 proc=p, log_path=tmp_path / "sidecar.log")
        args = ["--input", str(out), "--since", str(t), "--until", str(t + 100)]

        r = _report("performance", *args, "--html", str(tmp_path / "perf.html"))
        assert r.returncode == 0, r.stderr
        perf = json.loads(r.stdout)["report"]
        pay = next(o for o in perf["operations"] if o["operation"] == "/pay")
        assert pay["count"] == 100 and abs(pay["throughput_per_second"] - 1.0) < 1e-9
        assert 30 + 49.5 * 0.3 - 0.5 < pay["p50_ms"] < 30 + 49.5 * 0.3 + 0.5
        assert 30 + 94 * 0.3 < pay["p95_ms"] <= 30 + 99 * 0.3 + 0.01 and pay["p99_ms"] >= pay["p95_ms"]
        assert abs(pay["error_rate"] - 0.1) < 1e-9
        reg = perf["regressions"][0]
        assert reg["operation"] == "/pay" and reg["change"] > 1.5, reg
        assert all(r["operation"] != "/q" for r in perf["regressions"])       # no previous period: none
        page = (tmp_path / "perf.html").read_text()
        assert "<svg" in page and "p95 latency per operation" in page
        assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "<script" not in page

        r = _report("usage", *args, "--api", f"http://127.0.0.1:{api}", "--token", TOKENS["reader"],
                    "--json", str(tmp_path / "usage.json"), "--html", str(tmp_path / "usage.html"))
        assert r.returncode == 0, r.stderr
        usage = json.loads((tmp_path / "usage.json").read_text())["report"]
        assert {(i["service"], i["signal"], i["items"]) for i in usage["items"]} == {
            ("checkout", "traces", 100), ("search", "traces", 50)}
        assert usage["drops"]["exporter_send_failed"] == 0 and usage["drops"]["ring_dropped"] == 0

        r = _report("health", *args, "--service", "checkout", "--slo", "0.95", "--html", str(tmp_path / "health.html"))
        assert r.returncode == 0, r.stderr
        health = json.loads(r.stdout)["report"]
        (svc,) = health["services"]
        assert svc["service"] == "checkout" and svc["spans"] == 100
        assert abs(svc["availability"] - 0.9) < 1e-9 and abs(svc["error_budget_used"] - 2.0) < 1e-9
        assert abs(svc["semconv_compliance"] - 0.8) < 1e-9
        assert "semantic-convention compliance" in (tmp_path / "health.html").read_text()

        # bad input: a message naming it, exit 2
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"resourceSpans": []}\nnot json\n')
        r = _report("usage", "--input", str(bad))
        assert r.returncode == 2 and f"{bad}:2: not OTLP-JSON" in r.stderr
        r = _report("usage", "--input", str(out), "--since", "yesterday")
        assert r.returncode == 2 and "--since/--until" in r.stderr
        assert call(api, "/api/v1/status", TOKENS["reader"])[0] == 200
