"""``otelplug store prune|info``: retention and size of the telemetry store.

``prune --older-than DURATION`` drops whole hourly partitions older than
that and prints how many records went.  With a sidecar holding a DuckDB
store, the sidecar does the pruning on this command's behalf.
"""
from __future__ import annotations

import sys

from . import store_output as out


def _with_store(args, mode: str, command: str, work):
    """``work(store)`` on the store of --store; (url, result), or None after
    printing the one-line error naming the store."""
    from otelplug.store import StoreError
    try:
        store = out.open_for(args.store, mode)
        try:
            return store.url, work(store)
        finally:
            store.close()
    except StoreError as exc:
        print(f"otelplug store {command}: {exc}", file=sys.stderr)
        return None


def _prune(args) -> int:
    from otelplug.store.timeparse import parse_duration
    try:
        age = parse_duration(args.older_than)
    except ValueError as exc:
        print(f"otelplug store prune: bad --older-than: {exc}", file=sys.stderr)
        return 2
    done = _with_store(args, "admin", "prune", lambda s: s.prune(older_than=age))
    if done is None:
        return 1
    print(f"removed {done[1]} records older than {args.older_than} from {done[0]}")
    return 0


def _info(args) -> int:
    from otelplug.store.schema import TABLES
    done = _with_store(args, "read", "info", lambda s: (
        {t.name: s.count(table=t.name) for t in TABLES}, s.size_bytes()))
    if done is None:
        return 1
    url, (counts, size) = done
    print(f"store {url}: {size:,} bytes")
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
