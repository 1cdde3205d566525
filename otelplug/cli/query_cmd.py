"""``otelplug query trace|spans|logs|stats``: ask the telemetry store.

Every command takes ``--store URL`` (default: the store of the embedded
default config) and ``--format table|json``; JSON is the stable output
(otelplug/store/SCHEMA.md).  Bad arguments print one line and exit 2; a
store that cannot be read prints one line naming it and exits 1.  Queries
work while a sidecar writes the same store (serve.py explains how for
DuckDB).
"""
from __future__ import annotations

import json
import sys

from . import query_traces
from . import store_output as out


def _store_arg(p) -> None:
    p.add_argument("--store", metavar="URL",
                   help="duckdb:///path/file.duckdb or postgresql://... (default: the default config's)")


def _common(p) -> None:
    _store_arg(p)
    p.add_argument("--format", choices=["table", "json"], default="table")


def _range_args(p, limit: int) -> None:
    """--since/--until, --limit, --store and --format: every listing has them."""
    p.add_argument("--since", metavar="TIME", help="ISO 8601, 'now', or a duration ago (1h)")
    p.add_argument("--until", metavar="TIME", help="ISO 8601, 'now', or a duration ago")
    p.add_argument("--limit", default=limit, help=f"rows (default {limit})")
    _common(p)


def _run(args) -> int:
    if getattr(args, "analysis", False):
        return query_traces.run_analysis(args)
    from otelplug.store import QueryError, StoreError
    from otelplug.store.timeparse import parse_duration, parse_instant

    def parsed(name, parse, flag=None):
        """``--name`` parsed, None when not given; QueryError naming the flag."""
        v = getattr(args, name, None)
        if v is None:
            return None
        try:
            return parse(v)
        except ValueError as exc:
            raise QueryError(f"bad --{name.replace('_', '-')}: {exc}") from None

    def duration(name):
        return parsed(name, parse_duration)

    def instant(name):
        return parsed(name, parse_instant)

    try:
        kind = args.what
        if kind == "trace":
            request = ("trace", {"trace_id": args.trace_id})
        elif kind == "spans":
            request = ("spans", dict(service=args.service, name=args.name, where=args.where,
                                     min_duration=duration("min_duration"),
                                     max_duration=duration("max_duration"), status=args.status,
                                     since=instant("since"), until=instant("until"),
                                     limit=args.limit))
        elif kind == "logs":
            request = ("logs", dict(service=args.service, event=args.event,
                                    min_severity=args.min_severity, trace_id=args.trace_id,
                                    since=instant("since"), until=instant("until"), limit=args.limit))
        else:
            request = ("stats", dict(by=args.by, bucket=args.bucket, service=args.service,
                                     since=instant("since"), until=instant("until"),
                                     limit=args.limit))
        # check the arguments before touching the store: the SQL builders
        # raise QueryError for anything malformed
        _dry_run(*request)
        store = out.open_for(args.store, "read")
        try:
            rows = getattr(store, request[0])(**request[1])
        finally:
            store.close()
    except QueryError as exc:
        print(f"otelplug query {args.what}: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"otelplug query {args.what}: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=None, separators=(",", ":"), default=str)
        sys.stdout.write("\n")
    else:
        print(out.TABLES[kind](rows, getattr(args, "by", None)))
    return 0


def _dry_run(method, kwargs) -> None:
    from otelplug.store import queries as q
    builder = {"trace": q.trace_sql, "spans": q.spans_sql, "logs": q.logs_sql,
               "stats": q.stats_sql}[method]
    builder(q.DUCKDB, **kwargs)


def register(subparsers) -> None:
    p = subparsers.add_parser("query", help="query the telemetry store (trace, spans, logs, stats)")
    out.one_line_errors(p, "otelplug query")
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True)

    t = sub.add_parser("trace", help="every span of one trace")
    t.add_argument("trace_id", metavar="TRACE_ID", help="32 hex digits")
    t.add_argument("--analysis", action="store_true",
                   help="critical path, self time and latency breakdown")
    _common(t)

    s = sub.add_parser("spans", help="spans matching filters, newest first")
    s.add_argument("--service")
    s.add_argument("--name", help="span name")
    s.add_argument("--where", action="append", metavar="KEY=VALUE",
                   help="span or resource attribute equals VALUE (repeatable)")
    s.add_argument("--min-duration", metavar="D", help="e.g. 250ms")
    s.add_argument("--max-duration", metavar="D")
    s.add_argument("--status", help="error, ok or unset")
    _range_args(s, 100)

    lg = sub.add_parser("logs", help="log records and events, newest first")
    lg.add_argument("--service")
    lg.add_argument("--event", metavar="NAME", help="event name")
    lg.add_argument("--min-severity", metavar="S", help="1-24 or trace|debug|info|warn|error|fatal")
    lg.add_argument("--trace-id", metavar="ID")
    _range_args(lg, 100)

    st = sub.add_parser("stats", help="span counts, errors and latency percentiles per group and bucket")
    st.add_argument("--by", default="service,name", help="comma list of service, name, kind, status, scope")
    st.add_argument("--bucket", default="1h", help="1m, 1h, 1d, 1w or 1mo")
    st.add_argument("--service", help="only this service")
    _range_args(st, 10000)

    for sp in (t, s, lg, st):
        out.one_line_errors(sp, f"otelplug query {sp.prog.split()[-1]}")
        sp.set_defaults(func=_run)
    query_traces.register(sub, _store_arg)
