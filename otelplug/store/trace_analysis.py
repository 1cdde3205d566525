"""The trace-analysis table (``otel_trace_analysis``): rows from the
``otelplug.trace.analysis`` log records the trace_assembly connector
emits, and the queries over it and over the spans a service graph needs."""
from __future__ import annotations

import json

from . import queries as q

EVENT = "otelplug.trace.analysis"
_A = "otelplug.trace."
JSON_COLUMNS = ("Anomalies", "CriticalPath", "ByOperation", "ByService")
ANALYSIS_COLUMNS = ("Timestamp", "TraceId", "ServiceName", "RootName", "SpanCount", "Depth",
                    "ErrorCount", "Duration", "CloseReason", "Revision", "LateSpans") + JSON_COLUMNS
GRAPH_COLUMNS = ("Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanKind", "ServiceName",
                 "Duration", "StatusCode", "SpanAttributes", "ResourceAttributes")
GRAPH_KINDS = ("SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER")


def analysis_row(r) -> tuple:
    """One decoded log record -> a row in TRACE_ANALYSIS's column order."""
    a = r.attributes
    try:
        body = json.loads(r.body) if isinstance(r.body, str) else {}
    except ValueError:
        body = {}
    anomalies = {k[len(_A) + len("anomaly."):]: v for k, v in a.items()
                 if k.startswith(_A + "anomaly.")}

    def j(v) -> str:
        return json.dumps(v, separators=(",", ":"))

    return (r.time_unix_nano or r.observed_time_unix_nano, format(r.trace_id or 0, "032x"),
            str(a.get(_A + "root.service", "")), str(a.get(_A + "root.name", "")),
            int(a.get(_A + "span_count", 0)), int(a.get(_A + "depth", 0)),
            int(a.get(_A + "error_count", 0)), int(a.get(_A + "duration_ns", 0)),
            str(a.get(_A + "close_reason", "")), int(a.get(_A + "revision", 0)),
            int(a.get(_A + "late_spans", 0)), j(anomalies), j(body.get("critical_path", [])),
            j(body.get("by_operation", [])), j(body.get("by_service", [])))


def analysis_sql(d: q.Dialect, trace_id: str):
    """The latest revision of one trace's analysis."""
    tid = q.check_id(trace_id, 16, "trace id")
    return d.sql(f'SELECT {q._select(d, ANALYSIS_COLUMNS)} FROM otel_trace_analysis '
                 f'WHERE "TraceId" = ? ORDER BY "Revision" DESC LIMIT 1'), [tid]


def graph_spans_sql(d: q.Dialect, since=None, until=None, limit=1_000_000,
                    relation="otel_traces"):
    """The spans that can form service-graph edges in a time range."""
    w = q._Where(d)
    w.add('"SpanKind" IN (?, ?, ?, ?)', *GRAPH_KINDS)
    w.time_range("Timestamp", since, until)
    return d.sql(f'SELECT {q._select(d, GRAPH_COLUMNS)} FROM {relation}{w.sql()} '
                 f'LIMIT {q.check_limit(limit)}'), w.params


def finish_analysis(rows: list[dict]) -> list[dict]:
    for r in rows:
        for k in JSON_COLUMNS:
            if isinstance(r.get(k), str):
                r[k] = json.loads(r[k])
        r["Timestamp"] = int(r["Timestamp"])
    return rows
