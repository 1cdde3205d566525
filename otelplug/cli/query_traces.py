"""``otelplug query trace TRACE_ID --analysis`` and ``otelplug query graph``:
the trace analyses of otelplug/traces over what the store holds.

``--analysis`` analyses the stored spans of the trace (so it works for any
trace in the store) and shows, when the trace_assembly connector stored
one, its latest stored analysis beside: how and when the trace was closed.
``graph`` pairs the spans of a time range the way the servicegraph
connector does and prints nodes and edges as a table, JSON or Graphviz DOT.
"""
from __future__ import annotations

import json
import sys

from . import store_output as out


def _fail(what: str, exc, code: int) -> int:
    print(f"otelplug query {what}: {exc}", file=sys.stderr)
    return code


class _Failed(Exception):
    """A query failed; ``code`` is the exit status (2 bad arguments, 1 store)."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def _read(url, fetch):
    """``fetch(store)`` on the store at ``url`` opened for reading; the
    store's errors as _Failed with the CLI's exit codes."""
    from otelplug.store import QueryError, StoreError
    try:
        store = out.open_for(url, "read")
        try:
            return fetch(store)
        finally:
            store.close()
    except QueryError as exc:
        raise _Failed(exc, 2) from None
    except StoreError as exc:
        raise _Failed(exc, 1) from None


def run_analysis(args) -> int:
    from otelplug.store import QueryError
    from otelplug.store import queries as q
    from otelplug.traces import analyse
    from otelplug.traces.report import trace_report
    from otelplug.traces.rows import trace_spans
    try:
        q.check_id(args.trace_id, 16, "trace id")
    except QueryError as exc:
        return _fail("trace", exc, 2)

    def fetch(store):
        rows = store.trace(args.trace_id)
        return rows, (store.trace_analysis(args.trace_id) if rows else None)

    try:
        rows, stored = _read(args.store, fetch)
    except _Failed as exc:
        return _fail("trace", exc, exc.code)
    if not rows:
        return _fail("trace", f"no spans of trace {args.trace_id} in the store", 1)
    a = analyse(trace_spans(rows))
    if args.format == "json":
        json.dump({"trace_id": args.trace_id.lower(), "analysis": a.summary(), "stored": stored},
                  sys.stdout, separators=(",", ":"), default=str)
        sys.stdout.write("\n")
        return 0
    print(f"trace {args.trace_id.lower()}: " + trace_report(a))
    if stored:
        print(f"\nstored analysis: revision {stored['Revision']}, closed by "
              f"{stored['CloseReason']}, {stored['SpanCount']} spans, "
              f"{stored['LateSpans']} late")
    return 0


def run_graph(args) -> int:
    from otelplug.store.timeparse import parse_instant
    from otelplug.traces.graph import graph_from_rows
    try:
        since = parse_instant(args.since) if args.since else None
        until = parse_instant(args.until) if args.until else None
    except ValueError as exc:
        return _fail("graph", f"bad --since/--until: {exc}", 2)
    try:
        rows = _read(args.store, lambda store: store.graph_spans(since=since, until=until,
                                                                  limit=args.limit))
    except _Failed as exc:
        return _fail("graph", exc, exc.code)
    g = graph_from_rows(rows)
    print({"json": g.as_json, "dot": g.as_dot, "table": g.as_table}[args.format]())
    return 0


def register(sub, store_arg) -> None:
    g = sub.add_parser("graph", help="the service graph: nodes, edges, calls, errors, p95")
    g.add_argument("--since", metavar="TIME", help="ISO 8601, 'now', or a duration ago (1h)")
    g.add_argument("--until", metavar="TIME", help="ISO 8601, 'now', or a duration ago")
    g.add_argument("--limit", default=1_000_000, help="spans read at most (default 1000000)")
    store_arg(g)
    g.add_argument("--format", choices=["table", "json", "dot"], default="table",
                   help="dot: Graphviz")
    out.one_line_errors(g, "otelplug query graph")
    g.set_defaults(func=run_graph)
