"""The demo's trace view: the service graph of everything exported, and
the critical path of the slowest trace (from the OTLP-JSON output)."""
from __future__ import annotations

import json
from pathlib import Path


def print_traces(path: Path, out=print) -> None:
    from otelplug.traces import analyse
    from otelplug.traces.graph import graph_from_rows
    from otelplug.traces.report import critical_path_line
    from otelplug.traces.rows import rows_from_otlp_json, trace_spans
    if not path.exists():
        return
    with path.open() as f:
        rows = rows_from_otlp_json(json.loads(line) for line in f if line.strip())
    if not rows:
        return
    out("\nservice graph (otelplug query graph shows the same from the store):")
    out("  " + graph_from_rows(rows).as_table().replace("\n", "\n  "))
    roots = [r for r in rows if not r["ParentSpanId"]]
    slowest = max(roots or rows, key=lambda r: r["Duration"])["TraceId"]
    a = analyse(trace_spans([r for r in rows if r["TraceId"] == slowest]))
    out(f"\ncritical path of the slowest trace {slowest} ({a.duration / 1e6:.3f} ms), "
        "latest first:")
    out("  " + critical_path_line(a))
