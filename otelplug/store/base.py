"""What every store backend offers: bulk writes of a sidecar batch, the
queries, retention by age and size (dropping whole hourly partitions), and
its size.  Backends implement the small abstract part; queries and
retention policy live here once.
"""
from __future__ import annotations

import time

from . import queries as q
from . import schema
from .rows import rows_for


class StoreError(Exception):
    """A store that cannot be used: unreachable, corrupt, wrong schema
    version.  The message names the store."""


class Store:
    dialect: q.Dialect
    url: str

    # -- the backend's part ---------------------------------------------------
    def write_tables(self, tables: dict) -> int:
        """Insert ``{table: {column: array}}`` in one transaction; returns
        the rows that became visible (replayed spans are not inserted
        twice).  Raises StoreError (or the driver's error) on failure."""
        raise NotImplementedError

    def fetch(self, sql: str, params) -> list[dict]:
        raise NotImplementedError

    def partitions(self) -> list[tuple[schema.Table, int, str]]:
        """Every (table, hour, partition name)."""
        raise NotImplementedError

    def drop_partition(self, table: schema.Table, name: str) -> int:
        """Drop one partition; returns how many rows it held."""
        raise NotImplementedError

    def size_bytes(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def relation(self, table: str, since=None, until=None) -> str:
        """What a query over ``table`` limited to [since, until) reads: the
        table itself here; DuckDB names only the partitions in range."""
        return table

    # -- shared ---------------------------------------------------------------
    def write(self, records) -> int:
        """Store one sidecar batch (RecordSet); committed when this returns."""
        return self.write_tables(rows_for(records))

    def trace(self, trace_id: str) -> list[dict]:
        return q.finish_rows(self.fetch(*q.trace_sql(self.dialect, trace_id)))

    def spans(self, **filters) -> list[dict]:
        rel = self.relation("otel_traces", filters.get("since"), filters.get("until"))
        return q.finish_rows(self.fetch(*q.spans_sql(self.dialect, relation=rel, **filters)))

    def logs(self, **filters) -> list[dict]:
        rel = self.relation("otel_logs", filters.get("since"), filters.get("until"))
        return q.finish_rows(self.fetch(*q.logs_sql(self.dialect, relation=rel, **filters)))

    def stats(self, by=("service", "name"), bucket="1h", **filters) -> list[dict]:
        rel = self.relation("otel_traces", filters.get("since"), filters.get("until"))
        return q.finish_stats(self.fetch(*q.stats_sql(self.dialect, by=by, bucket=bucket,
                                                      relation=rel, **filters)), bucket)

    def trace_analysis(self, trace_id: str) -> dict | None:
        """The latest stored analysis of one trace (trace_assembly), or None."""
        from .trace_analysis import analysis_sql, finish_analysis
        rows = finish_analysis(self.fetch(*analysis_sql(self.dialect, trace_id)))
        return rows[0] if rows else None

    def graph_spans(self, since=None, until=None, limit=1_000_000) -> list[dict]:
        """Client, server, producer and consumer spans in [since, until)."""
        from .trace_analysis import graph_spans_sql
        rel = self.relation("otel_traces", since, until)
        return q.finish_rows(self.fetch(*graph_spans_sql(self.dialect, since, until, limit, rel)))

    def count(self, table: str = "otel_traces") -> int:
        if table not in schema.BY_NAME:
            raise q.QueryError(f"unknown table {table!r}")
        return int(self.fetch(f"SELECT count(*) AS n FROM {table}", [])[0]["n"])

    def prune(self, older_than: float | None = None, max_bytes: int | None = None,
              now: float | None = None) -> int:
        """Drop whole partitions older than ``older_than`` seconds, then the
        oldest ones while the store is larger than ``max_bytes`` (never the
        current hour's).  Returns the number of records removed."""
        now = time.time() if now is None else now
        current = int(now * 1e9) // schema.PARTITION_NS
        parts = sorted(self.partitions(), key=lambda p: p[1])
        removed = 0
        if older_than is not None:
            cutoff = int((now - older_than) * 1e9)
            for table, hour, name in parts:
                # the whole hour must be older than the cutoff
                if (hour + 1) * schema.PARTITION_NS <= cutoff:
                    removed += self.drop_partition(table, name)
            parts = [p for p in parts if (p[1] + 1) * schema.PARTITION_NS > cutoff]
        if max_bytes is not None:
            hours = sorted({h for _, h, _ in parts if h < current})
            for hour in hours:
                if self.size_bytes() <= max_bytes:
                    break
                for table, h, name in parts:
                    if h == hour:
                        removed += self.drop_partition(table, name)
        return removed
