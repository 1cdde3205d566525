"""The store's queries through the API, against a real sidecar writing
to an embedded DuckDB store: spans, one trace, logs, history (the groups
and buckets of ``otelplug query stats``); parameters reach the SQL as
parameters; the status shows the store's size; the page's trace view."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse

from tests.sidecar.test_reliability import free_port

from .sidecar import ROOT, TOKENS, call, send_spans, sidecar, wait_api, wait_for


def _config(api, otlp, db):
    return f"""
receivers:
  otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{otlp}}}}}}}
processors:
  batch: {{timeout: 100ms}}
exporters:
  store: {{url: "duckdb://{db}"}}
extensions:
  api: {{endpoint: 127.0.0.1:{api}, tokens: [{{name: r, value: {TOKENS['reader']}, scopes: [read]}}]}}
service:
  extensions: [api]
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [store]}}
"""


def test_store_queries_through_the_api(tmp_path):
    api, otlp = free_port(), free_port()
    with sidecar(tmp_path, _config(api, otlp, tmp_path / "store.duckdb")) as p:
        log = tmp_path / "sidecar.log"
        wait_api(api, p, log)
        trace_ids = send_spans(otlp, "checkout", n_ok=8, n_err=2)
        send_spans(otlp, "search", n_ok=5, n_err=0)
        tok = TOKENS["reader"]

        def spans(query=""):
            code, body = call(api, f"/api/v1/spans?since=now-1h{query}", tok)
            assert code == 200, body
            return body["spans"]
        wait_for(lambda: len(spans()) == 15, "15 spans in the store", proc=p, log_path=log)
        assert {s["ServiceName"] for s in spans("&service=checkout")} == {"checkout"}
        assert len(spans("&service=checkout&status=error")) == 2
        assert len(spans("&limit=3")) == 3
        # values are parameters, never SQL text
        evil = urllib.parse.quote("x' OR '1'='1")
        assert spans(f"&name={evil}") == []
        assert len(spans("&name=" + urllib.parse.quote("GET /secret/path"))) == 15

        code, tr = call(api, f"/api/v1/traces/{trace_ids[0]}", tok)
        assert code == 200 and len(tr["spans"]) == 1 and tr["spans"][0]["TraceId"] == trace_ids[0]
        assert call(api, f"/api/v1/traces/{'ab' * 16}", tok)[0] == 404
        assert call(api, f"/api/v1/traces/{'0' * 32}", tok)[0] == 404

        code, hist = call(api, "/api/v1/history?since=now-1h&bucket=1m&group_by=service", tok)
        assert code == 200, hist
        per = {}
        for row in hist["series"]:
            per[row["service"]] = per.get(row["service"], 0) + row["count"]
        assert per == {"checkout": 10, "search": 5}, hist
        assert sum(r["errors"] for r in hist["series"] if r["service"] == "checkout") == 2

        code, logs = call(api, "/api/v1/logs?since=now-1h&severity=error", tok)
        assert code == 200 and logs["logs"] == []

        code, st = call(api, "/api/v1/status", tok)
        assert st["capabilities"]["store"] and st["store"]["spans"] == 15 and st["store"]["bytes"] > 0

        # otelplug report reads the store the sidecar holds (through the sidecar)
        r = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "report", "performance", "--store",
                            f"duckdb://{tmp_path / 'store.duckdb'}", "--since", "now-1h"],
                           capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert r.returncode == 0, r.stderr
        ops = {(o["service"], o["operation"]): o for o in json.loads(r.stdout)["report"]["operations"]}
        assert ops[("checkout", "GET /secret/path")]["count"] == 10
        assert abs(ops[("checkout", "GET /secret/path")]["error_rate"] - 0.2) < 1e-9
