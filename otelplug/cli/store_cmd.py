"""``otelplug store prune|info``: retention and size of the telemetry store.

``prune --older-than DURATION`` drops whole hourly partitions older than
that and prints how many records went.  With a sidecar holding a DuckDB
store, the sidecar does the pruning on this command's behalf.
"""
from __future__ import annotations

import sys

from . import store_output as out


def _prune(args) -> int:
    from otelplug.store import StoreError
    from otelplug.store.timeparse import parse_duration
    try:
        age = parse_duration(args.older_than)
    except ValueError as exc:
        print(f"otelplug store prune: bad --older-than: {exc}", file=sys.stderr)
        return 2
    try:
        store = out.open_for(args.store, "admin")
        try:
            removed = store.prune(older_than=age)
        finally:
            store.close()
    except StoreError as exc:
        print(f"otelplug store prune: {exc}", file=sys.stderr)
        return 1
    print(f"removed {removed} records older than {args.older_than} from {store.url}")
    return 0


def _info(args) -> int:
    from otelplug.store import StoreError
    try:
        store = out.open_for(args.store, "read")
        try:
            counts = {t: store.count(table=t) for t in
                      ("otel_traces", "otel_logs", "otel_metrics_gauge", "otel_metrics_sum",
                       "otel_metrics_histogram", "otel_metrics_exponential_histogram")}
            size = store.size_bytes()
        finally:
            store.close()
    except StoreError as exc:
        print(f"otelplug store info: {exc}", file=sys.stderr)
        return 1
    print(f"store {store.url}: {size:,} bytes")
    for t, n in counts.items():
        print(f"  {t:<38}{n:>12,} rows")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("store", help="the telemetry store: prune, info")
    out.one_line_errors(p, "otelplug store")
    sub = p.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    pr = sub.add_parser("prune", help="remove data older than a duration (whole hours)")
    pr.add_argument("--older-than", required=True, metavar="DURATION", help="e.g. 72h, 3d")
    pr.add_argument("--store", metavar="URL")
    pr.set_defaults(func=_prune)
    out.one_line_errors(pr, "otelplug store prune")
    inf = sub.add_parser("info", help="rows per table and bytes used")
    inf.add_argument("--store", metavar="URL")
    inf.set_defaults(func=_info)
    out.one_line_errors(inf, "otelplug store info")
