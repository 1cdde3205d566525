"""The embedded store: one DuckDB file, hourly partition tables behind one
view per ClickHouse table name.

Why DuckDB: a columnar, compressed, embedded engine that ingests numpy
columns in one statement (bench/store.py measures it against SQLite, the
other embedded candidate).  Why partition tables: DuckDB has no native
partitions, and retention must drop whole hours without a scan or a
rewrite; ``otel_traces`` etc. are views over ``otel_traces_empty`` plus the
``otel_traces_p<hour>`` tables, so SQL written for the ClickHouse names
works unchanged.

DuckDB allows one writing process per file, and while it writes no other
process can open the file at all.  So the writing process (the sidecar)
serves reads and prunes for others over a local socket (serve.py); a
process that finds the file free opens it itself.
"""
from __future__ import annotations

import os
import threading
import time

import duckdb
import numpy as np

from . import queries as q
from . import schema
from .base import Store, StoreError


TRACE_ID_TABLE = "otel_traces_trace_id_ts_p"   # + hour: a finished hour's trace ids, sorted


def is_lock_conflict(exc: Exception) -> bool:
    return "lock" in str(exc).lower() and isinstance(exc, duckdb.IOException)


class DuckDBStore(Store):
    dialect = q.DUCKDB

    def __init__(self, path: str, read_only: bool = False, memory_limit: str | None = None,
                 threads: int | None = None):
        self.path = os.path.abspath(path)
        self.url = f"duckdb://{self.path}"
        self.read_only = read_only
        # DuckDB samples 1000 rows of every object (str) column of a
        # registered numpy batch to guess its type: ~1 ms a column per
        # batch, more than the insert itself.  Our columns have fixed types
        # (the INSERT casts them), so skip the guess.
        # DuckDB's allocator keeps up to 128 MB of freed memory by default:
        # return it sooner, the sidecar's RSS matters more than the reuse
        cfg = {"pandas_analyze_sample": 0, "allocator_flush_threshold": "8MB"}
        if memory_limit:
            cfg["memory_limit"] = memory_limit
        if threads:
            cfg["threads"] = int(threads)
        if not read_only:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        elif not os.path.exists(self.path):
            raise StoreError(f"store {self.url}: no such file")
        try:
            self._con = duckdb.connect(self.path, read_only=read_only, config=cfg)
        except duckdb.Error as exc:
            if is_lock_conflict(exc):
                raise
            raise StoreError(f"store {self.url}: cannot open: {_first_line(exc)}") from None
        self._local = threading.local()
        self._ddl = threading.Lock()       # partition create/drop + view refresh
        self._sealed: set[int] = set()     # hours with a trace-id table (seal())
        try:
            self._check_schema()
            self._sealed = {h for h, _ in self._trace_id_tables(self._con)}
        except Exception:
            self._con.close()
            raise

    # -- schema ---------------------------------------------------------------
    def _check_schema(self) -> None:
        con = self._con
        try:
            has_meta = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                                   [schema.META_TABLE]).fetchone()[0]
            if has_meta:
                row = con.execute(f"SELECT value FROM {schema.META_TABLE} WHERE key = 'schema_version'"
                                  ).fetchone()
                version = int(row[0]) if row else None
                if version != schema.SCHEMA_VERSION:
                    raise StoreError(f"store {self.url}: schema version {version}, this otelplug "
                                     f"reads and writes version {schema.SCHEMA_VERSION}")
                if not self.read_only:
                    self._add_missing_tables(con)
                return
            if self.read_only:
                raise StoreError(f"store {self.url}: not an otelplug store (no {schema.META_TABLE} table)")
            if con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0]:
                raise StoreError(f"store {self.url}: the database has other tables and no "
                                 f"{schema.META_TABLE}: not an otelplug store")
            con.execute("BEGIN")
            con.execute(f"CREATE TABLE {schema.META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
            con.execute(f"INSERT INTO {schema.META_TABLE} VALUES ('schema_version', ?)",
                        [str(schema.SCHEMA_VERSION)])
            for t in schema.TABLES:
                con.execute(f"CREATE TABLE {t.name}_empty ({t.render_columns(0)})")
                con.execute(f"CREATE VIEW {t.name} AS SELECT * FROM {t.name}_empty")
            con.execute("COMMIT")
        except duckdb.Error as exc:
            raise StoreError(f"store {self.url}: {_first_line(exc)}") from None

    def _add_missing_tables(self, con) -> None:
        """Tables added to version 1 later (otel_trace_analysis) are created
        in a store made before them, as PostgreSQL's CREATE IF NOT EXISTS does."""
        have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for t in schema.TABLES:
            if f"{t.name}_empty" not in have:
                con.execute(f"CREATE TABLE {t.name}_empty ({t.render_columns(0)})")
                con.execute(f"CREATE VIEW {t.name} AS SELECT * FROM {t.name}_empty")

    def _cursor(self):
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self._con.cursor()
        return cur

    def _refresh_view(self, cur, table: schema.Table) -> None:
        names = [n for t, _, n in self._partitions(cur) if t is table]
        body = " UNION ALL ".join(f"SELECT * FROM {n}" for n in [f"{table.name}_empty"] + sorted(names))
        cur.execute(f"CREATE OR REPLACE VIEW {table.name} AS {body}")

    def _ensure_partition(self, cur, table: schema.Table, hour: int, known: set) -> str:
        name = schema.partition_name(table, hour)
        if name in known:
            return name
        with self._ddl:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {name} AS SELECT * FROM {table.name}_empty LIMIT 0")
            self._refresh_view(cur, table)
        known.add(name)
        return name

    # -- writing ----------------------------------------------------------------
    def write_tables(self, tables: dict) -> int:
        if self.read_only:
            raise StoreError(f"store {self.url}: opened read-only")
        cur = self._cursor()
        known = getattr(self._local, "known", None)
        if known is None:
            known = self._local.known = {n for _, _, n in self._partitions(cur)}
        plan = []
        for tname, cols in tables.items():
            table = schema.BY_NAME[tname]
            ts = cols[table.time_column].view(np.int64)
            if not len(ts):
                continue
            hours = ts // schema.PARTITION_NS
            for hour in np.unique(hours):
                sel = hours == hour
                part = {k: v[sel] for k, v in cols.items()} if not sel.all() else cols
                plan.append((table, self._ensure_partition(cur, table, int(hour), known), part))
        written = 0
        try:
            cur.execute("BEGIN")
            for table, name, part in plan:
                written += self._insert(cur, table, name, part)
            cur.execute("COMMIT")
        except duckdb.Error as exc:
            try:
                cur.execute("ROLLBACK")
            except duckdb.Error:
                pass
            if isinstance(exc, duckdb.CatalogException):
                known.clear()   # a partition was dropped under us: look again next time
            raise StoreError(f"store {self.url}: write failed: {_first_line(exc)}") from None
        return written

    def _insert(self, cur, table: schema.Table, name: str, part: dict) -> int:
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        cur.register("otelplug_batch", part)
        try:
            if table is schema.TRACES:
                # a replay after a crash re-delivers spans already stored:
                # insert only the (TraceId, SpanId) not yet in this hour's
                # partition, looking only at the batch's time range (the
                # zone maps skip the rest)
                ts = part["Timestamp"].view(np.int64)
                res = cur.execute(
                    f"INSERT INTO {name} ({cols}) SELECT {cols} FROM otelplug_batch b "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {name} t WHERE t.\"Timestamp\" "
                    f"BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?) "
                    f"AND t.\"TraceId\" = b.\"TraceId\" AND t.\"SpanId\" = b.\"SpanId\")",
                    [int(ts.min()), int(ts.max())])
                hour = schema.partition_hour(name, table)
                if hour in self._sealed:
                    # a late span for an hour already sealed: its trace goes
                    # into that hour's trace-id table too
                    cur.execute(f'INSERT INTO {TRACE_ID_TABLE}{hour} SELECT "TraceId", '
                                f'min("Timestamp"), max("Timestamp") FROM otelplug_batch GROUP BY 1')
            else:
                res = cur.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM otelplug_batch")
            return int(res.fetchone()[0])    # DuckDB answers an INSERT with its row count
        finally:
            cur.unregister("otelplug_batch")

    # -- reading ----------------------------------------------------------------
    def fetch(self, sql: str, params) -> list[dict]:
        cur = self._cursor()
        try:
            res = cur.execute(sql, params)
            names = [d[0] for d in res.description]
            return [dict(zip(names, row)) for row in res.fetchall()]
        except duckdb.Error as exc:
            raise StoreError(f"store {self.url}: query failed: {_first_line(exc)}") from None

    def _partitions(self, cur) -> list:
        out = []
        rows = cur.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'otel_%'"
                           ).fetchall()
        for (name,) in rows:
            for t in schema.TABLES:
                hour = schema.partition_hour(name, t)
                if hour is not None:
                    out.append((t, hour, name))
        return out

    def partitions(self):
        return self._partitions(self._cursor())

    def relation(self, table: str, since=None, until=None) -> str:
        """The partitions of ``table`` that [since, until) touches, as one
        relation: the view would make DuckDB bind and check every hour."""
        if since is None and until is None:
            return table
        lo = -1 if since is None else int(since) // schema.PARTITION_NS
        hi = float("inf") if until is None else (int(until) - 1) // schema.PARTITION_NS
        names = sorted(n for t, h, n in self.partitions() if t.name == table and lo <= h <= hi)
        parts = [f"{table}_empty"] + names
        return "(" + " UNION ALL ".join(f"SELECT * FROM {n}" for n in parts) + f") AS {table}"

    def drop_partition(self, table: schema.Table, name: str) -> int:
        if self.read_only:
            raise StoreError(f"store {self.url}: opened read-only")
        cur = self._cursor()
        n = cur.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        with self._ddl:
            # the view first, so no query sees a view naming a dropped table
            cur.execute("BEGIN")
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            hour = schema.partition_hour(name, table)
            if table is schema.TRACES and hour is not None:
                cur.execute(f"DROP TABLE IF EXISTS {TRACE_ID_TABLE}{hour}")
            self._refresh_view(cur, table)
            cur.execute("COMMIT")
            if table is schema.TRACES:
                self._sealed.discard(hour)
        return int(n)

    # -- trace by id ------------------------------------------------------------
    # DuckDB has no index that suits random ids (an ART index over millions
    # of them would live in memory), and a scan of every TraceId grows with
    # the store.  As the ClickHouse exporter's otel_traces_trace_id_ts table,
    # each finished hour gets a small table of its distinct trace ids, sorted,
    # so per-row-group min/max skip all but one block: a lookup reads those,
    # then only the partitions that hold the trace and the unsealed hours.
    def _trace_id_tables(self, cur) -> list[tuple[int, str]]:
        rows = cur.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE ?",
                           [TRACE_ID_TABLE + "%"]).fetchall()
        out = []
        for (name,) in rows:
            suffix = name[len(TRACE_ID_TABLE):]
            if suffix.isdigit():
                out.append((int(suffix), name))
        return out

    def seal(self, now: float | None = None) -> int:
        """Build the trace-id table of every finished hour that has none;
        returns how many.  The sidecar's retention thread calls it."""
        if self.read_only:
            return 0
        now = time.time() if now is None else now
        current = int(now * 1e9) // schema.PARTITION_NS
        cur = self._cursor()
        done = 0
        for t, hour, name in self._partitions(cur):
            if t is not schema.TRACES or hour >= current or hour in self._sealed:
                continue
            cur.execute("BEGIN")
            cur.execute(f'CREATE TABLE IF NOT EXISTS {TRACE_ID_TABLE}{hour} AS SELECT "TraceId", '
                        f'min("Timestamp") AS "Start", max("Timestamp") AS "End" FROM {name} '
                        f'GROUP BY 1 ORDER BY 1')
            cur.execute("COMMIT")
            self._sealed.add(hour)
            done += 1
        return done

    maintain = seal

    def trace(self, trace_id: str) -> list[dict]:
        tid = q.check_id(trace_id, 16, "trace id")
        cur = self._cursor()
        parts = {h: n for t, h, n in self._partitions(cur) if t is schema.TRACES}
        sealed = [h for h in parts if h in self._sealed]
        hits = set()
        if sealed:
            union = " UNION ALL ".join(f'SELECT {h} AS h, "TraceId" FROM {TRACE_ID_TABLE}{h}'
                                       for h in sealed)
            hits = {r["h"] for r in self.fetch(f'SELECT DISTINCT h FROM ({union}) WHERE "TraceId" = ?',
                                               [tid])}
        names = [n for h, n in sorted(parts.items()) if h not in sealed or h in hits]
        rel = ("(" + " UNION ALL ".join(f"SELECT * FROM {n}" for n in ["otel_traces_empty"] + names)
               + ") AS otel_traces")
        return q.finish_rows(self.fetch(*q.trace_sql(self.dialect, tid, relation=rel)))

    def size_bytes(self) -> int:
        """Bytes the data occupies (used blocks and WAL); the file itself
        does not shrink when partitions are dropped: DuckDB reuses the
        freed blocks."""
        row = self._cursor().execute("SELECT block_size * used_blocks FROM pragma_database_size() "
                                     "WHERE database_name = current_database()").fetchone()
        wal = self.path + ".wal"
        return int(row[0] if row else 0) + (os.path.getsize(wal) if os.path.exists(wal) else 0)

    def file_bytes(self) -> int:
        wal = self.path + ".wal"
        return sum(os.path.getsize(p) for p in (self.path, wal) if os.path.exists(p))

    def close(self) -> None:
        try:
            self._con.close()
        except duckdb.Error:
            pass


def _first_line(exc) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
