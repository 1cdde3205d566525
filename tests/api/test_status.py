"""The api extension in a real sidecar: status, health that turns
unhealthy while exports fail, the sanitized public view, findings,
collect, and the OpenAPI document."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.otlp_sink import OTLPSink
from tests.sidecar.test_reliability import free_port

from .sidecar import ROOT, TOKENS, call, config, send_spans, sidecar, wait_api, wait_for

FORBIDDEN = ["secret-host-7", "424242", "leak@example.com", "db.internal.example", "/secret/path",
             "127.0.0.1", "GET /secret"]


def test_status_public_findings_collect_and_health(tmp_path):
    with OTLPSink(http_enabled=False) as sink:
        api, otlp = free_port(), free_port()
        with sidecar(tmp_path, config(api, otlp, sink.grpc_endpoint)) as p:
            log = tmp_path / "sidecar.log"
            wait_api(api, p, log)
            trace_ids = send_spans(otlp, "checkout", n_ok=30, n_err=10)
            # every span reaches the destination
            wait_for(lambda: sink.span_count() >= 40, "spans at the sink", proc=p, log_path=log)

            def exported():
                st = call(api, "/api/v1/status", TOKENS["reader"])[1]
                exp = next(e for e in st["exporters"] if e["id"] == "exporters::otlp")
                return st if exp["sent"] >= 40 else None
            st = wait_for(exported, "the exporter's sent count", proc=p, log_path=log)
            assert st["health"]["status"] == "healthy", st["health"]
            assert {c["id"] for c in st["components"]} >= {
                "receivers::otlp", "processors::batch", "exporters::otlp", "extensions::api"}
            assert all(c["state"] == "running" for c in st["components"])
            exp = next(e for e in st["exporters"] if e["id"] == "exporters::otlp")
            assert exp["sent"] >= 40 and exp["send_failed"] == 0
            recv = next(c for c in st["components"] if c["id"] == "receivers::otlp")
            assert recv["counters"]["receiver_accepted_spans"] == 40
            expc = next(c for c in st["components"] if c["id"] == "exporters::otlp")["counters"]
            assert "receiver_accepted_spans" not in expc and expc["exporter_sent_spans"] >= 40
            assert st["pipelines"][0]["id"] == "traces"
            assert st["semconv"] and st["semconv"][0]["id"] == "processors::semconv"

            # public: per-service aggregates once spanmetrics has them
            def public():
                code, body = call(api, "/api/v1/public?window=600")
                assert code == 200      # anonymous allowed by this config
                rows = {r["service"]: r for r in body["services"]}
                return rows.get("checkout") if rows.get("checkout", {}).get("throughput_per_second") else None
            wait_for(lambda: call(api, "/api/v1/public?window=600")[1]["services"], "public rows",
                     proc=p, log_path=log)
            row = wait_for(public, "a public row with throughput", proc=p, log_path=log)
            assert set(row) == {"service", "throughput_per_second", "error_rate", "p95_ms", "availability"}
            assert abs(row["error_rate"] - 0.25) < 1e-6, row
            assert abs(row["availability"] - 0.75) < 1e-6
            assert row["p95_ms"] is not None
            text = json.dumps(call(api, "/api/v1/public?window=600")[1])
            for bad in FORBIDDEN + trace_ids:
                assert bad not in text, f"{bad!r} leaked into /public: {text}"

            # findings: deprecated http.method, with its replacement
            code, f = call(api, "/api/v1/findings", TOKENS["reader"])
            assert code == 200
            dep = [g for g in f["findings"] if g["attribute_or_metric"] == "http.method"]
            assert dep and dep[0]["id"] == "deprecated" and dep[0]["count"] == 40, f
            assert dep[0]["renamed_to"] == "http.request.method"
            assert dep[0]["first_seen"] <= dep[0]["last_seen"]
            assert dep[0]["example"]["trace_id"] in trace_ids and dep[0]["service"] == "checkout"
            # ... and left the sidecar as one OTLP log record for the group, with the example's ids
            def finding_logs():
                out = []
                for r in sink.log_records():
                    a = {kv.key: kv.value for kv in r.attributes}
                    if a.get("otelplug.finding.subject") and a["otelplug.finding.subject"].string_value == "http.method" \
                            and a["weaver.finding.id"].string_value == "deprecated":
                        out.append((r, a))
                return out
            (rec, attrs), = wait_for(finding_logs, "the finding group's log record", proc=p, log_path=log)
            assert attrs["otelplug.finding.count"].int_value == 40
            assert attrs["weaver.finding.context.renamed_to"].string_value == "http.request.method"
            assert rec.trace_id.hex() == dep[0]["example"]["trace_id"] and rec.span_id.hex() == dep[0]["example"]["span_id"]
            # otelplug findings prints the grouped view from the API
            out = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "findings", "--url", f"http://127.0.0.1:{api}",
                                  "--token", TOKENS["reader"]], capture_output=True, text=True, timeout=60,
                                 env=dict(os.environ, PYTHONPATH=str(ROOT)))
            assert out.returncode == 0, out.stderr
            line = next(ln for ln in out.stdout.splitlines() if "http.method" in ln and "deprecated" in ln)
            assert " 40 " in line and "renamed to http.request.method" in line and dep[0]["example"]["trace_id"] in line
            denied = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "findings", "--url",
                                     f"http://127.0.0.1:{api}", "--token", TOKENS["pub"]],
                                    capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
            assert denied.returncode == 1 and "403" in denied.stderr and "lacks the 'read' scope" in denied.stderr
            code, only = call(api, "/api/v1/findings?level=information", TOKENS["reader"])
            assert code == 200 and all(g["level"] == "information" for g in only["findings"])

            # collect flushes the batch processor and spanmetrics now
            code, c = call(api, "/api/v1/collect", TOKENS["admin"], method="POST")
            assert code == 200 and "processors::batch" in c["flushed"], c

            # the OpenAPI document lists every endpoint
            code, doc = call(api, "/api/v1/openapi.json")
            assert code == 200 and doc["openapi"].startswith("3.")
            for path in ("/api/v1/status", "/api/v1/public", "/api/v1/history", "/api/v1/traces/{trace_id}",
                         "/api/v1/spans", "/api/v1/logs", "/api/v1/findings", "/api/v1/alerts",
                         "/api/v1/collect"):
                assert path in doc["paths"], path

            # no store / alert engine configured: said so, not a crash
            code, body = call(api, "/api/v1/spans", TOKENS["reader"])
            assert code == 404 and "store" in body["error"]
            code, body = call(api, "/api/v1/alerts", TOKENS["reader"])
            assert code == 404 and "alert" in body["error"]

            # otelplug top --api: pipelines, components and exporters under the rings
            top = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "top", "--api", f"http://127.0.0.1:{api}",
                                  "--token", TOKENS["reader"]], capture_output=True, text=True, timeout=60,
                                 env=dict(os.environ, PYTHONPATH=str(ROOT)))
            assert top.returncode == 0, top.stderr
            assert "health healthy" in top.stdout
            pipe = next(ln for ln in top.stdout.splitlines() if ln.startswith("traces "))
            assert "semconv,batch" in pipe and "otlp,spanmetrics" in pipe
            exp_line = [ln for ln in top.stdout.splitlines() if ln.startswith("exporters::otlp ")][-1]
            assert int(exp_line.split()[2]) >= exp["sent"], (exp_line, exp)

            # exports now fail: health turns unhealthy naming the exporter and why
            sink.stop()
            send_spans(otlp, "checkout", n_ok=5, n_err=0)

            def unhealthy():
                h = call(api, "/api/v1/status", TOKENS["reader"])[1]["health"]
                return h if h["status"] == "unhealthy" else None
            h = wait_for(unhealthy, "unhealthy status", proc=p, log_path=log)
            prob = h["problems"][0]
            assert prob["component"] == "exporters::otlp"
            assert "failed to export" in prob["reason"] and "none were sent" in prob["reason"]
            st = call(api, "/api/v1/status", TOKENS["reader"])[1]
            exp = next(e for e in st["exporters"] if e["id"] == "exporters::otlp")
            assert exp["send_failed"] >= 5 and exp["last_error"], exp
            top = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "top", "--json", "--api",
                                  f"http://127.0.0.1:{api}", "--token", TOKENS["reader"]], capture_output=True,
                                 text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
            assert json.loads(top.stdout)["sidecar"]["health"]["problems"][0]["component"] == "exporters::otlp"
            assert p.poll() is None
