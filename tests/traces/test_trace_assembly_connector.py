"""trace_assembly and servicegraph in a running sidecar: SDK spans of three
services through a real shm ring -> one analysis log record per trace in
the file exporter's output, and service-graph metrics; unit checks of the
connector with an injected clock (late spans, max_wait, memory bound)."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from otelplug import ShmSpanProcessor
from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
from otelplug.sidecar.config.decode import decode
from otelplug.sidecar.config.errors import ConfigErrors
from otelplug.sidecar.config.model import load
from otelplug.sidecar.connectors import trace_assembly as ta
from otelplug.sidecar.factories import Registry
from otelplug.sidecar.service import Service
from otelplug.sidecar.telemetry import Telemetry
from tests.sidecar.helpers import Capture, counting_ack, records_from_spans

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def read_json_lines(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def analysis_logs(path):
    out = []
    for req in read_json_lines(path):
        for rl in req.get("resourceLogs", []):
            for sl in rl["scopeLogs"]:
                for r in sl["logRecords"]:
                    if r.get("eventName") == "otelplug.trace.analysis":
                        attrs = {a["key"]: next(iter(a["value"].values())) for a in r["attributes"]}
                        out.append((r["traceId"], attrs, json.loads(r["body"]["stringValue"])))
    return out


def metric_names(path):
    names = set()
    for req in read_json_lines(path):
        for rm in req.get("resourceMetrics", []):
            for sm in rm["scopeMetrics"]:
                names.update(m["name"] for m in sm["metrics"])
    return names


def test_sidecar_assembles_analyses_and_graphs(tmp_path):
    channel = f"ta{uuid.uuid4().hex[:8]}"
    logs_out, metrics_out = tmp_path / "analysis.json", tmp_path / "graph.json"
    svc = Service(load("p.yaml", Registry.default(), text=f"""
receivers: {{shm: {{channels: [{channel}]}}}}
connectors:
  trace_assembly: {{quiet_gap: 200ms, max_wait: 5s, poll_interval: 50ms}}
  servicegraph: {{metrics_flush_interval: 100ms, store: {{ttl: 200ms}},
                 store_expiration_loop: 50ms}}
exporters:
  file/analysis: {{path: "{logs_out}"}}
  file/graph: {{path: "{metrics_out}"}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], exporters: [trace_assembly, servicegraph]}}
    logs: {{receivers: [trace_assembly], exporters: [file/analysis]}}
    metrics: {{receivers: [servicegraph], exporters: [file/graph]}}
"""))
    svc.start()
    providers = []
    try:
        tracers = {}
        for name in ("web", "api", "db"):
            tp = TracerProvider(resource=Resource.create({"service.name": name}))
            tp.add_span_processor(ShmSpanProcessor(channel))
            providers.append(tp)
            tracers[name] = tp.get_tracer("t")
        want = {}
        for i in range(5):
            root = tracers["web"].start_span("GET /", kind=SpanKind.SERVER, start_time=T0)
            call = tracers["web"].start_span("GET api", kind=SpanKind.CLIENT,
                                             context=trace.set_span_in_context(root),
                                             start_time=T0 + 10 * MS)
            srv = tracers["api"].start_span("GET /items", kind=SpanKind.SERVER,
                                            context=trace.set_span_in_context(call),
                                            start_time=T0 + 12 * MS)
            q = tracers["api"].start_span("SELECT", kind=SpanKind.CLIENT,
                                          context=trace.set_span_in_context(srv),
                                          start_time=T0 + 20 * MS,
                                          attributes={"db.system.name": "postgresql"})
            q.end(end_time=T0 + (60 + i) * MS)
            srv.end(end_time=T0 + 70 * MS)
            call.end(end_time=T0 + 75 * MS)
            root.end(end_time=T0 + 100 * MS)
            want[format(root.get_span_context().trace_id, "032x")] = 60 + i
        for tp in providers:
            tp.force_flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(analysis_logs(logs_out)) < 5:
            time.sleep(0.05)
        got = analysis_logs(logs_out)
        assert sorted(t for t, _, _ in got) == sorted(want)
        for tid, attrs, body in got:
            assert int(attrs["otelplug.trace.span_count"]) == 4
            assert int(attrs["otelplug.trace.depth"]) == 4
            assert attrs["otelplug.trace.root.service"] == "web"
            assert attrs["otelplug.trace.close_reason"] == "quiet"
            path = [(s["service"], s["name"], s["end_ns"] - s["start_ns"]) for s in body["critical_path"]]
            q_ms = want[tid] - 20
            assert path == [("web", "GET /", 25 * MS), ("web", "GET api", 5 * MS),
                            ("api", "GET /items", (70 - want[tid]) * MS),
                            ("api", "SELECT", q_ms * MS), ("api", "GET /items", 8 * MS),
                            ("web", "GET api", 2 * MS), ("web", "GET /", 10 * MS)]
            svc_rows = {r["label"]: r for r in body["by_service"]}
            assert svc_rows["api"]["critical_ns"] == (70 - 12) * MS
        while time.monotonic() < deadline and not {
                "traces_service_graph_request_total",
                "traces_service_graph_request_server"} <= metric_names(metrics_out):
            time.sleep(0.05)
        assert "traces_service_graph_request_client" in metric_names(metrics_out)
    finally:
        for tp in providers:
            tp.shutdown()
        svc.shutdown()


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def connector(**cfg):
    clock, cap = Clock(), Capture()
    st = CreateSettings(ComponentID("trace_assembly"), Kind.CONNECTOR, "traces", Telemetry(),
                        extra={"clock": clock})
    return ta.factory.create(st, decode(ta.TraceAssemblyConfig, cfg), cap), clock, cap


def sdk_trace(n_children=2):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tr = tp.get_tracer("t")
    root = tr.start_span("root", start_time=T0)
    for k in range(n_children):
        tr.start_span(f"c{k}", context=trace.set_span_in_context(root),
                      start_time=T0 + k * MS).end(end_time=T0 + (k + 5) * MS)
    root.end(end_time=T0 + 20 * MS)
    return mem.get_finished_spans()


def test_late_span_gives_a_second_revision_and_acks_settle_at_once():
    conn, clock, cap = connector(quiet_gap="1s", max_wait="10s")
    spans = sdk_trace(3)
    ack, settled = counting_ack()
    conn.consume(records_from_spans(spans[:-1][1:] + spans[-1:], acks=(ack,)))  # one child late
    assert settled == [False]
    clock.now = 1.5
    conn.poll()
    ack2, settled2 = counting_ack()
    conn.consume(records_from_spans(spans[:1], acks=(ack2,)))
    clock.now = 3.0
    conn.poll()
    logs = [r for rs in cap.got for r in _decode(rs)]
    assert [(l.attributes["otelplug.trace.span_count"], l.attributes["otelplug.trace.revision"])
            for l in logs] == [(3, 0), (4, 1)]
    assert conn.assembler.counts["late_spans"] == 1


def _decode(rs):
    from otelplug import codec
    return [codec.decode_log(p) for p in rs.payloads()]


def test_memory_bound_and_shutdown_close_everything():
    conn, clock, cap = connector(quiet_gap="1s", max_wait="10s", max_spans=5)
    for _ in range(3):
        conn.consume(records_from_spans(list(sdk_trace(2))))
    reasons = [l.attributes["otelplug.trace.close_reason"] for rs in cap.got for l in _decode(rs)]
    assert reasons == ["memory", "memory"] and conn.assembler.buffered <= 5
    conn.shutdown()
    reasons = [l.attributes["otelplug.trace.close_reason"] for rs in cap.got for l in _decode(rs)]
    assert reasons == ["memory", "memory", "shutdown"]


def test_config_errors_name_the_field():
    with pytest.raises(ConfigErrors) as err:
        decode(ta.TraceAssemblyConfig, {"quiet_gap": "10s", "max_wait": "1s", "max_spans": 0})
    text = str(err.value)
    assert "max_wait" in text and "max_spans" in text
