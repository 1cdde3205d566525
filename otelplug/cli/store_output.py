"""What the query and store commands share: opening the store named by
``--store`` (or the default config's), one-line argument errors, and the
human-readable tables."""
from __future__ import annotations

import sys

from otelplug.store.timeparse import iso


def one_line_errors(parser, prog: str) -> None:
    """argparse prints usage and exits 2 on bad arguments; print one line
    instead (still exit 2)."""
    def error(message):
        print(f"{prog}: {message}", file=sys.stderr)
        sys.exit(2)
    parser.error = error


def open_for(url: str | None, mode: str):
    from otelplug.sidecar.default_config import default_store_url
    from otelplug.store import open_store
    return open_store(url or default_store_url(), mode=mode)


def _table(headers, rows) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _ms(ns) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}"


def spans_table(rows, _by=None) -> str:
    if not rows:
        return "(no spans)"
    return _table(["time", "trace", "span", "service", "name", "ms", "status"],
                  [[iso(r["Timestamp"]), r["TraceId"], r["SpanId"], r["ServiceName"], r["SpanName"],
                    _ms(r["Duration"]), r["StatusCode"].removeprefix("STATUS_CODE_").lower()]
                   for r in rows])


def trace_table(rows, _by=None) -> str:
    """The spans of a trace as a tree (children under parents, by start)."""
    if not rows:
        return "(no such trace)"
    ids = {r["SpanId"] for r in rows}
    children: dict[str, list] = {}
    for r in rows:
        parent = r["ParentSpanId"] if r["ParentSpanId"] in ids else ""
        children.setdefault(parent, []).append(r)
    t0 = min(r["Timestamp"] for r in rows)
    out = []

    def walk(parent, depth):
        for r in sorted(children.get(parent, []), key=lambda r: r["Timestamp"]):
            out.append(["  " * depth + r["SpanName"], r["ServiceName"], r["SpanId"],
                        f"+{(r['Timestamp'] - t0) / 1e6:.3f}", _ms(r["Duration"]),
                        r["StatusCode"].removeprefix("STATUS_CODE_").lower()])
            walk(r["SpanId"], depth + 1)
    walk("", 0)
    return f"trace {rows[0]['TraceId']}: {len(rows)} spans\n" + _table(
        ["name", "service", "span", "start ms", "ms", "status"], out)


def logs_table(rows, _by=None) -> str:
    if not rows:
        return "(no log records)"
    return _table(["time", "severity", "service", "event", "trace", "body"],
                  [[iso(r["Timestamp"]), r["SeverityText"] or r["SeverityNumber"], r["ServiceName"],
                    r["EventName"], r["TraceId"], (r["Body"] or "")[:80]] for r in rows])


def stats_table(rows, by=None) -> str:
    if not rows:
        return "(no spans in range)"
    keys = [k for k in rows[0] if k in ("service", "name", "kind", "status", "scope")]
    return _table(["bucket"] + keys + ["count", "errors", "err%", "p50 ms", "p95 ms", "p99 ms",
                                       "max ms", "per s"],
                  [[iso(r["bucket"])] + [r[k] for k in keys] +
                   [r["count"], r["errors"], f"{100 * r['error_rate']:.1f}", _ms(r["p50"]),
                    _ms(r["p95"]), _ms(r["p99"]), _ms(r["max"]), f"{r['throughput']:.2f}"]
                   for r in rows])


TABLES = {"trace": trace_table, "spans": spans_table, "logs": logs_table, "stats": stats_table}
