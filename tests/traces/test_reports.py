"""The query-side views: a stored trace's report (tree, critical path
marked, breakdown) and the service graph of stored spans as table, JSON
and DOT (checked by Graphviz's own parser)."""
from __future__ import annotations

import json
import subprocess

from otelplug.traces import analyse
from otelplug.traces.graph import graph_from_rows
from otelplug.traces.report import critical_path_line, trace_report
from otelplug.traces.rows import trace_spans
from tests.requirements import require_executable

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def row(trace, span, parent, name, service, kind, start_ms, dur_ms, error=False, attrs=None):
    """A span as the store returns it (Collector ClickHouse column names)."""
    return {"Timestamp": T0 + start_ms * MS, "TraceId": f"{trace:032x}",
            "SpanId": f"{span:016x}", "ParentSpanId": f"{parent:016x}" if parent else "",
            "SpanName": name, "SpanKind": f"SPAN_KIND_{kind}", "ServiceName": service,
            "Duration": dur_ms * MS, "StatusCode": "STATUS_CODE_ERROR" if error else
            "STATUS_CODE_UNSET", "SpanAttributes": attrs or {}, "ResourceAttributes": {}}


def checkout(trace, slow_ms, error=False):
    return [row(trace, 1, 0, "POST /checkout", "web", "SERVER", 0, 100 + slow_ms),
            row(trace, 2, 1, "POST pay", "web", "CLIENT", 10, 50 + slow_ms, error),
            row(trace, 3, 2, "POST /pay", "payments", "SERVER", 12, 45 + slow_ms, error),
            row(trace, 4, 3, "INSERT", "payments", "CLIENT", 20, 30 + slow_ms,
                attrs={"db.system.name": "postgresql"}),
            row(trace, 5, 1, "GET geo", "web", "CLIENT", 70 + slow_ms, 20,
                attrs={"server.address": "geo.example"})]


def test_trace_report_marks_the_critical_path():
    a = analyse(trace_spans(checkout(1, 0)))
    text = trace_report(a)
    lines = text.splitlines()
    assert lines[0].startswith("5 spans, depth 4, 0 errors, 100.000 ms")
    assert any(l.startswith("*     POST /pay") and "payments" in l for l in lines)
    assert any(l.startswith("* POST /checkout") for l in lines)
    assert "latency by service:" in text and "latency by operation:" in text
    assert critical_path_line(a) == (
        "web:POST /checkout (10.000 ms) <- web:GET geo (20.000 ms) <- "
        "web:POST /checkout (10.000 ms) <- web:POST pay (3.000 ms) <- "
        "payments:POST /pay (7.000 ms) <- payments:INSERT (30.000 ms) <- "
        "payments:POST /pay (8.000 ms) <- web:POST pay (2.000 ms) <- "
        "web:POST /checkout (10.000 ms)")


def test_graph_counts_errors_p95_and_virtual_nodes():
    rows = []
    for t in range(20):
        rows += checkout(100 + t, slow_ms=t, error=(t % 4 == 0))
    g = graph_from_rows(rows)
    edges = {(e.client, e.server, e.connection_type): e for e in g.edges}
    pay = edges[("web", "payments", "")]
    assert pay.calls == 20 and pay.errors == 5 and abs(pay.error_rate - 0.25) < 1e-9
    # server-side durations 45..64 ms: numpy's linear p95 of them
    assert abs(pay.p95_ms - 63.05) < 1e-6
    assert edges[("payments", "postgresql", "database")].calls == 20
    assert edges[("web", "geo.example", "virtual_node")].calls == 20
    assert edges[("user", "web", "virtual_node")].calls == 20
    nodes = {n["name"]: n for n in json.loads(g.as_json())["nodes"]}
    assert nodes["payments"]["calls_in"] == 20 and nodes["payments"]["errors_in"] == 5
    table = g.as_table()
    assert any(l.split()[:4] == ["web", "payments", "-", "20"] for l in table.splitlines())
    assert table.splitlines()[0].split() == ["client", "server", "type", "calls", "errors",
                                             "error", "%", "p95", "ms"]


def test_dot_output_is_valid_graphviz():
    dot = require_executable("dot", "install the Debian package graphviz")
    g = graph_from_rows(checkout(7, 0) + [
        row(8, 1, 0, 'GET "quoted" \\ path', 'svc "x"', "SERVER", 0, 5)])
    out = subprocess.run([dot, "-Tplain"], input=g.as_dot(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    nodes = {l.split()[1].strip('"') for l in out.stdout.splitlines() if l.startswith("node ")}
    assert {"web", "payments", "postgresql", "geo.example", "user"} <= nodes
    edges = [l for l in out.stdout.splitlines() if l.startswith("edge ")]
    assert len(edges) == len(g.edges) == 5
