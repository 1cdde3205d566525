"""The analysis table and the trace queries on both store backends:
spans and trace_assembly's analysis records written through the store,
then ``otelplug query trace --analysis`` and ``otelplug query graph`` as a
user runs them; and a running sidecar filling otel_trace_analysis."""
from __future__ import annotations

import json
import subprocess
import time
import uuid

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelplug import ShmSpanProcessor
from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
from otelplug.sidecar.config.decode import decode
from otelplug.sidecar.config.model import load
from otelplug.sidecar.connectors import trace_assembly as ta
from otelplug.sidecar.factories import Registry
from otelplug.sidecar.service import Service
from otelplug.sidecar.telemetry import Telemetry
from otelplug.store import open_store
from tests.cli.helpers import run_cli
from tests.requirements import require_executable
from tests.sidecar.helpers import Capture, records_from_spans

MS = 1_000_000


def make_traces(n, processors):
    """n checkout traces: web -> payments (-> postgresql), every third failing."""
    tracers = {}
    for svc in ("web", "payments"):
        tp = TracerProvider(resource=Resource.create({"service.name": svc}))
        for p in processors:
            tp.add_span_processor(p)
        tracers[svc] = (tp, tp.get_tracer("t"))
    now = time.time_ns()
    ids = []
    for i in range(n):
        t0 = now - (n - i) * 200 * MS
        web, pay = tracers["web"][1], tracers["payments"][1]
        root = web.start_span("POST /checkout", kind=SpanKind.SERVER, start_time=t0)
        call = web.start_span("POST pay", kind=SpanKind.CLIENT, start_time=t0 + 5 * MS,
                              context=trace.set_span_in_context(root))
        srv = pay.start_span("POST /pay", kind=SpanKind.SERVER, start_time=t0 + 6 * MS,
                             context=trace.set_span_in_context(call))
        db = pay.start_span("INSERT", kind=SpanKind.CLIENT, start_time=t0 + 10 * MS,
                            context=trace.set_span_in_context(srv),
                            attributes={"db.system.name": "postgresql"})
        db.end(end_time=t0 + (30 + i) * MS)
        if i % 3 == 0:
            srv.set_status(Status(StatusCode.ERROR))
        srv.end(end_time=t0 + (35 + i) * MS)
        call.end(end_time=t0 + (40 + i) * MS)
        root.end(end_time=t0 + 60 * MS)
        ids.append(format(root.get_span_context().trace_id, "032x"))
    return ids, [tp for tp, _ in tracers.values()]


def analysis_logs(spans):
    """trace_assembly's records for ``spans`` (closed by its quiet gap)."""
    clock, cap = [0.0], Capture(settle=False)
    st = CreateSettings(ComponentID("trace_assembly"), Kind.CONNECTOR, "traces", Telemetry(),
                        extra={"clock": lambda: clock[0]})
    conn = ta.factory.create(st, decode(ta.TraceAssemblyConfig, {"quiet_gap": "1s"}), cap)
    conn.consume(records_from_spans(spans))
    clock[0] = 5.0
    conn.poll()
    return cap.got


def test_query_trace_analysis_and_graph(store_url):
    mem = InMemorySpanExporter()
    ids, providers = make_traces(6, [SimpleSpanProcessor(mem)])
    spans = mem.get_finished_spans()
    store = open_store(store_url, mode="write")
    try:
        store.write(records_from_spans(spans))
        for rs in analysis_logs(spans):
            store.write(rs)
        stored = store.trace_analysis(ids[1])
    finally:
        store.close()
    assert stored["SpanCount"] == 4 and stored["Revision"] == 0
    assert stored["CloseReason"] == "quiet" and stored["ServiceName"] == "web"
    assert [(s["service"], s["name"]) for s in stored["CriticalPath"]][:2] == [
        ("web", "POST /checkout"), ("web", "POST pay")]

    r = run_cli("query", "trace", ids[1], "--analysis", "--store", store_url, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"trace {ids[1]}: 4 spans, depth 4, 0 errors, 60.000 ms")
    assert any(l.startswith("*       INSERT") for l in lines)
    assert "stored analysis: revision 0, closed by quiet" in r.stdout
    r = run_cli("query", "trace", ids[0], "--analysis", "--format", "json", "--store",
                store_url, timeout=60)
    got = json.loads(r.stdout)
    assert got["analysis"]["error_count"] == 1 and got["stored"]["ErrorCount"] == 1

    r = run_cli("query", "graph", "--since", "1h", "--format", "json", "--store", store_url,
                timeout=60)
    assert r.returncode == 0, r.stderr
    edges = {(e["client"], e["server"], e["connection_type"]): e
             for e in json.loads(r.stdout)["edges"]}
    pay = edges[("web", "payments", "")]
    assert (pay["calls"], pay["errors"]) == (6, 2)
    assert edges[("payments", "postgresql", "database")]["calls"] == 6
    assert edges[("user", "web", "virtual_node")]["calls"] == 6
    r = run_cli("query", "graph", "--since", "1h", "--format", "dot", "--store", store_url,
                timeout=60)
    dot = require_executable("dot", "install the Debian package graphviz")
    assert subprocess.run([dot, "-Tplain"], input=r.stdout, capture_output=True, text=True,
                          timeout=60).returncode == 0
    r = run_cli("query", "graph", "--since", "1h", "--store", store_url, timeout=60)
    assert r.returncode == 0 and "payments" in r.stdout and "p95 ms" in r.stdout


def test_query_errors_are_one_line(duckdb_url):
    open_store(duckdb_url, mode="write").close()
    r = run_cli("query", "trace", "xyz", "--analysis", "--store", duckdb_url, timeout=60)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("query", "trace", "ab" * 16, "--analysis", "--store", duckdb_url, timeout=60)
    assert r.returncode == 1 and "no spans of trace" in r.stderr
    r = run_cli("query", "graph", "--since", "yesterdayish", "--store", duckdb_url, timeout=60)
    assert r.returncode == 2 and "--since" in r.stderr


def test_sidecar_stores_analyses(tmp_path):
    channel = f"tq{uuid.uuid4().hex[:8]}"
    url = f"duckdb://{tmp_path}/store.duckdb"
    svc = Service(load("p.yaml", Registry.default(), text=f"""
receivers: {{shm: {{channels: [{channel}]}}}}
connectors:
  trace_assembly: {{quiet_gap: 200ms, max_wait: 5s, poll_interval: 50ms}}
exporters:
  store: {{url: "{url}", serve_reads: false}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], exporters: [store, trace_assembly]}}
    logs: {{receivers: [trace_assembly], exporters: [store]}}
"""))
    svc.start()
    try:
        ids, providers = make_traces(4, [ShmSpanProcessor(channel)])
        for tp in providers:
            tp.force_flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and \
                svc.telemetry.get("connector_trace_assembly_traces_closed") is None:
            time.sleep(0.05)
        fam = svc.telemetry.get("connector_trace_assembly_traces_closed")
        while time.monotonic() < deadline and sum(v for _, v in fam.samples()) < 4:
            time.sleep(0.05)
        for tp in providers:
            tp.shutdown()
    finally:
        svc.shutdown()
    store = open_store(url, mode="read")
    try:
        assert store.count("otel_trace_analysis") == 4
        got = {tid: store.trace_analysis(tid) for tid in ids}
        assert store.count("otel_logs") == 0     # analyses have their own table
    finally:
        store.close()
    assert all(a["SpanCount"] == 4 and a["CloseReason"] == "quiet" for a in got.values())
