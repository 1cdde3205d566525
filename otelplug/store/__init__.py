"""The telemetry store: spans, log records and metric points, queryable.

Embedded by default (a DuckDB file), PostgreSQL when several hosts share
one database.  Tables follow the Collector's ClickHouse exporter
(SCHEMA.md).  ``open_store(url)``:

- ``duckdb:///abs/path/file.duckdb`` (or a plain path): the embedded store;
- ``postgresql://user@host:port/db``: the shared one.

``mode="write"`` is the sidecar (creates the schema, serves other processes'
reads of a DuckDB file); ``mode="read"`` is a query client: it opens the
file itself when it is free, else asks the process that holds it.
"""
from __future__ import annotations

import os

from .base import Store, StoreError
from .queries import QueryError

DEFAULT_PATH = "otelplug-store.duckdb"

__all__ = ["Store", "StoreError", "QueryError", "open_store", "parse_url", "DEFAULT_PATH"]


def parse_url(url: str) -> tuple[str, str]:
    """(backend, location): ("duckdb", absolute path) or ("postgresql", dsn)."""
    u = str(url).strip()
    if u.startswith(("postgresql://", "postgres://")):
        return "postgresql", u
    if u.startswith("duckdb://"):
        path = u[len("duckdb://"):]
        if not path:
            raise StoreError(f"store URL {url!r}: no path (use duckdb:///path/to/file.duckdb)")
        return "duckdb", os.path.abspath(path)
    if "://" in u:
        raise StoreError(f"store URL {url!r}: unknown scheme (use duckdb:///path or postgresql://...)")
    if not u:
        raise StoreError("store URL is empty")
    return "duckdb", os.path.abspath(u)


def open_store(url: str, mode: str = "read", **options):
    backend, where = parse_url(url)
    if backend == "postgresql":
        from .postgres_store import PostgresStore
        return PostgresStore(where, create=(mode == "write"), **options)
    from .duckdb_store import DuckDBStore, is_lock_conflict
    if mode == "write":
        return DuckDBStore(where, **options)
    try:
        return DuckDBStore(where, read_only=(mode == "read"), **options)
    except Exception as exc:
        if not is_lock_conflict(exc):
            raise
    from .serve import RemoteStore
    return RemoteStore(where)
