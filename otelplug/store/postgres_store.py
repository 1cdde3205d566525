"""The shared store: PostgreSQL (>= 13), for several sidecars (hosts) writing
into one database.

Each ClickHouse-named table is natively partitioned by range on its time
column, one partition per hour, created on demand (under an advisory lock,
so concurrent sidecars do not race).  Batches arrive with COPY; spans go
through a temporary staging table and ``INSERT .. ON CONFLICT DO NOTHING``
on the unique (TraceId, SpanId, Timestamp) index, so a replayed span (a
sidecar restarted after a crash, or two sidecars reading one ring) is
stored once.  That index also serves trace-by-id; a (ServiceName,
Timestamp) index serves time-range scans of one service.  Retention
detaches partitions CONCURRENTLY and drops them, without blocking writers.

psycopg 3 is the driver: maintained, COPY support, binary wheels.
"""
from __future__ import annotations

import threading
import zlib

import numpy as np
import psycopg
from psycopg.rows import dict_row

from . import queries as q
from . import schema
from .base import Store, StoreError

# extra indexes per table (beyond the time partitioning)
INDEXES = {
    "otel_traces": [("span_key", '("TraceId", "SpanId", "Timestamp")', True),
                    ("service_time", '("ServiceName", "Timestamp")', False)],
    "otel_logs": [("trace_id", '("TraceId")', False),
                  ("service_time", '("ServiceName", "Timestamp")', False)],
}
INDEXES["otel_trace_analysis"] = [("trace_id", '("TraceId", "Revision")', False)]
for _t in (schema.GAUGE, schema.SUM, schema.HISTOGRAM, schema.EXP_HISTOGRAM):
    INDEXES[_t.name] = [("name_time", '("MetricName", "TimeUnix")', False)]


def _lock_id(name: str) -> int:
    return zlib.crc32(f"otelplug:{name}".encode())


def _safe_dsn(dsn: str) -> str:
    """The DSN without a password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "postgresql://..."
    info.pop("password", None)
    return "postgresql://{user}@{host}:{port}/{dbname}".format(
        user=info.get("user", ""), host=info.get("host", ""), port=info.get("port", "5432"),
        dbname=info.get("dbname", ""))


class _Guard:
    """Driver errors -> StoreError naming the store; a broken connection is
    dropped so the next call reconnects."""

    def __init__(self, store, what):
        self.store, self.what = store, what

    def __enter__(self):
        return self

    def __exit__(self, tp, exc, tb):
        if exc is None or not isinstance(exc, psycopg.Error):
            return False
        conn = getattr(self.store._local, "conn", None)
        if isinstance(exc, psycopg.OperationalError) and conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass
            self.store._local.conn = None
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"store {self.store.url}: {self.what} failed: {msg}") from None


class PostgresStore(Store):
    dialect = q.POSTGRES

    def __init__(self, dsn: str, create: bool = False, connect_timeout: float = 5.0):
        self.dsn = dsn
        self.url = _safe_dsn(dsn)
        self._timeout = connect_timeout
        self._local = threading.local()
        self._known: set[str] = set()
        self._known_lock = threading.Lock()
        with self._errors("open"):
            conn = self._conn()
            if create:
                self._create_schema(conn)
            self._check_version(conn)

    # -- connections ----------------------------------------------------------
    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.dsn, connect_timeout=max(1, int(self._timeout)),
                                   row_factory=dict_row, autocommit=True,
                                   options="-c TimeZone=UTC")
            self._local.conn = conn
        return conn

    def _errors(self, what: str) -> "_Guard":
        return _Guard(self, what)

    # -- schema ---------------------------------------------------------------
    def _create_schema(self, conn) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_id("schema")])
            conn.execute(f"CREATE TABLE IF NOT EXISTS {schema.META_TABLE} "
                         f"(key text PRIMARY KEY, value text)")
            conn.execute(f"INSERT INTO {schema.META_TABLE} VALUES ('schema_version', %s) "
                         f"ON CONFLICT (key) DO NOTHING", [str(schema.SCHEMA_VERSION)])
            for t in schema.TABLES:
                conn.execute(f"CREATE TABLE IF NOT EXISTS {t.name} ({t.render_columns(1)}) "
                             f'PARTITION BY RANGE ("{t.time_column}")')
                for suffix, cols, unique in INDEXES.get(t.name, ()):
                    conn.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS "
                                 f"{t.name}_{suffix} ON {t.name} {cols}")

    def _check_version(self, conn) -> None:
        exists = conn.execute("SELECT to_regclass(%s) AS t", [schema.META_TABLE]).fetchone()["t"]
        if exists is None:
            raise StoreError(f"store {self.url}: not an otelplug store (no {schema.META_TABLE} table; "
                             f"a sidecar with a store exporter creates it)")
        row = conn.execute(f"SELECT value FROM {schema.META_TABLE} WHERE key = 'schema_version'"
                           ).fetchone()
        version = int(row["value"]) if row else None
        if version != schema.SCHEMA_VERSION:
            raise StoreError(f"store {self.url}: schema version {version}, this otelplug reads and "
                             f"writes version {schema.SCHEMA_VERSION}")

    def _ensure_partition(self, conn, table: schema.Table, hour: int) -> None:
        name = schema.partition_name(table, hour)
        if name in self._known:
            return
        lo = hour * schema.PARTITION_NS / 1e9
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_id(name)])
            conn.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table.name} "
                         f"FOR VALUES FROM (to_timestamp({lo})) TO (to_timestamp({lo + 3600}))")
        with self._known_lock:
            self._known.add(name)

    # -- writing ----------------------------------------------------------------
    def write_tables(self, tables: dict) -> int:
        written = 0
        with self._errors("write"):
            conn = self._conn()
            for tname, cols in tables.items():
                table = schema.BY_NAME[tname]
                ts = cols[table.time_column].view(np.int64)
                for hour in np.unique(ts // schema.PARTITION_NS):
                    self._ensure_partition(conn, table, int(hour))
            with conn.transaction():
                for tname, cols in tables.items():
                    written += self._copy(conn, schema.BY_NAME[tname], cols)
        return written

    def _copy(self, conn, table: schema.Table, cols: dict) -> int:
        names = table.column_names
        n = len(cols[names[0]])
        if n == 0:
            return 0
        values = []
        for c, typ in table.columns:
            v = cols[c]
            if typ == "ts":   # text COPY: ISO 8601 in UTC (PostgreSQL keeps microseconds)
                values.append((np.datetime_as_string(v, unit="us") + "Z").tolist())
            else:
                values.append(v.tolist())
        collist = ", ".join(f'"{c}"' for c in names)
        target = table.name
        if table is schema.TRACES:
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS otelplug_stage_traces "
                         f"(LIKE {table.name}) ON COMMIT DELETE ROWS")
            target = "otelplug_stage_traces"
        with conn.cursor() as cur:
            with cur.copy(f"COPY {target} ({collist}) FROM STDIN") as cp:
                for row in zip(*values):
                    cp.write_row(row)
            if table is schema.TRACES:
                cur.execute(f"INSERT INTO {table.name} ({collist}) SELECT {collist} "
                            f"FROM otelplug_stage_traces ON CONFLICT DO NOTHING")
                return cur.rowcount
        return n

    # -- reading ----------------------------------------------------------------
    def fetch(self, sql: str, params) -> list[dict]:
        with self._errors("query"):
            return self._conn().execute(sql, params).fetchall()

    def partitions(self):
        with self._errors("listing partitions"):
            rows = self._conn().execute(
                "SELECT c.relname AS part, p.relname AS parent FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                "WHERE p.relname = ANY(%s)", [[t.name for t in schema.TABLES]]).fetchall()
        out = []
        for r in rows:
            t = schema.BY_NAME[r["parent"]]
            hour = schema.partition_hour(r["part"], t)
            if hour is not None:
                out.append((t, hour, r["part"]))
        return out

    def drop_partition(self, table: schema.Table, name: str) -> int:
        with self._errors("dropping a partition"):
            conn = self._conn()
            n = conn.execute(f"SELECT count(*) AS n FROM {name}").fetchone()["n"]
            try:
                # CONCURRENTLY: writers of other partitions are not blocked
                conn.execute(f"ALTER TABLE {table.name} DETACH PARTITION {name} CONCURRENTLY")
            except (psycopg.errors.UndefinedTable, psycopg.errors.WrongObjectType,
                    psycopg.errors.ObjectNotInPrerequisiteState, psycopg.errors.InvalidTableDefinition):
                pass   # another sidecar is pruning the same partition
            conn.execute(f"DROP TABLE IF EXISTS {name}")
        with self._known_lock:
            self._known.discard(name)
        return int(n)

    def size_bytes(self) -> int:
        with self._errors("size"):
            row = self._conn().execute(
                "SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) AS n FROM pg_inherits i "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(%s)",
                [[t.name for t in schema.TABLES]]).fetchone()
        return int(row["n"])

    file_bytes = size_bytes

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
