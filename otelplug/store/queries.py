"""The queries, shared by every backend: parameterised SQL only (user input
never becomes SQL text), with the few dialect differences behind a
``Dialect``.  ``relation`` is what to read instead of the table's name (a
backend's union of the partitions a time range touches; never user text).  Argument checks raise ``QueryError`` with a one-line message
(the CLI exits 2 on it).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from .rows import STATUS_BY_WORD


class QueryError(ValueError):
    """Bad query arguments (unknown column, malformed value)."""


@dataclass(frozen=True)
class Dialect:
    name: str
    ts_param: str                 # SQL taking one ns-since-epoch parameter
    ts_out: str                   # format: a timestamp column as ns since epoch
    percentile: str               # format: (column, fraction) -> exact percentile
    placeholder: str = "?"

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


DUCKDB = Dialect("duckdb", "make_timestamp_ns(?)", 'epoch_ns("{0}")', 'quantile_cont("{0}", {1})')
POSTGRES = Dialect("postgresql", "to_timestamp(?::double precision / 1e9)",
                   "(extract(epoch from \"{0}\") * 1000000)::bigint * 1000",
                   'percentile_cont({1}) within group (order by "{0}")', "%s")

_HEX = re.compile(r"^[0-9a-fA-F]+$")
SEVERITY = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "warning": 13, "error": 17, "fatal": 21}
BUCKETS = {"1m": "minute", "1h": "hour", "1d": "day", "1w": "week", "1mo": "month"}
GROUP_COLUMNS = {"service": "ServiceName", "name": "SpanName", "kind": "SpanKind",
                 "status": "StatusCode", "scope": "ScopeName"}
SPAN_COLUMNS = ("Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName",
                "SpanKind", "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion",
                "SpanAttributes", "Duration", "StatusCode", "StatusMessage", "Events", "Links")
LOG_COLUMNS = ("Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText", "SeverityNumber",
               "ServiceName", "EventName", "Body", "ResourceAttributes", "ScopeName",
               "ScopeVersion", "LogAttributes")
_JSON_COLUMNS = {"ResourceAttributes", "SpanAttributes", "Events", "Links", "LogAttributes"}


def check_id(text: str, width: int, what: str) -> str:
    s = str(text).strip().lower()
    if len(s) != 2 * width or not _HEX.match(s):
        raise QueryError(f"bad {what} {text!r}: expected {2 * width} hex digits")
    if s == "0" * (2 * width):
        raise QueryError(f"bad {what} {text!r}: all zeros is not a valid id")
    return s


def check_limit(limit) -> int:
    try:
        n = int(limit)
    except (TypeError, ValueError):
        raise QueryError(f"bad limit {limit!r}: expected a positive integer") from None
    if n < 1:
        raise QueryError(f"bad limit {limit!r}: expected a positive integer")
    return n


def parse_where(items) -> list[tuple[str, str]]:
    out = []
    for item in items or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise QueryError(f"bad --where {item!r}: expected KEY=VALUE")
        out.append((key, value))
    return out


def parse_severity(v) -> int:
    s = str(v).strip().lower()
    if s.isdigit() and 0 <= int(s) <= 24:
        return int(s)
    if s in SEVERITY:
        return SEVERITY[s]
    raise QueryError(f"bad severity {v!r}: use 1-24 or one of {', '.join(sorted(set(SEVERITY) - {'warning'}))}")


class _Where:
    def __init__(self, d: Dialect):
        self.d, self.parts, self.params = d, [], []

    def add(self, sql: str, *params):
        self.parts.append(sql)
        self.params.extend(params)

    def time_range(self, column, since, until):
        if since is not None:
            self.add(f'"{column}" >= {self.d.ts_param}', int(since))
        if until is not None:
            self.add(f'"{column}" < {self.d.ts_param}', int(until))

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.parts)) if self.parts else ""


def _select(d: Dialect, columns) -> str:
    return ", ".join(f'{d.ts_out.format(c)} AS "{c}"' if c == "Timestamp" else f'"{c}"'
                     for c in columns)


def trace_sql(d: Dialect, trace_id: str, relation="otel_traces"):
    tid = check_id(trace_id, 16, "trace id")
    sql = (f'SELECT {_select(d, SPAN_COLUMNS)} FROM {relation} WHERE "TraceId" = ? '
           f'ORDER BY "Timestamp", "SpanId"')
    return d.sql(sql), [tid]


def spans_sql(d: Dialect, service=None, name=None, where=(), min_duration=None,
              max_duration=None, status=None, since=None, until=None, limit=100,
              relation="otel_traces"):
    w = _Where(d)
    if service:
        w.add('"ServiceName" = ?', service)
    if name:
        w.add('"SpanName" = ?', name)
    for key, value in parse_where(where):
        # a span attribute or, failing that, a resource attribute
        w.add('coalesce("SpanAttributes"->>?, "ResourceAttributes"->>?) = ?', key, key, value)
    if min_duration is not None:
        w.add('"Duration" >= ?', int(min_duration * 1e9))
    if max_duration is not None:
        w.add('"Duration" <= ?', int(max_duration * 1e9))
    if status:
        code = STATUS_BY_WORD.get(str(status).lower())
        if code is None:
            raise QueryError(f"bad status {status!r}: use error, ok or unset")
        w.add('"StatusCode" = ?', code)
    w.time_range("Timestamp", since, until)
    sql = (f'SELECT {_select(d, SPAN_COLUMNS)} FROM {relation}{w.sql()} '
           f'ORDER BY "Timestamp" DESC LIMIT {check_limit(limit)}')
    return d.sql(sql), w.params


def logs_sql(d: Dialect, service=None, event=None, min_severity=None, trace_id=None,
             since=None, until=None, limit=100, relation="otel_logs"):
    w = _Where(d)
    if service:
        w.add('"ServiceName" = ?', service)
    if event:
        w.add('"EventName" = ?', event)
    if min_severity is not None:
        w.add('"SeverityNumber" >= ?', parse_severity(min_severity))
    if trace_id:
        w.add('"TraceId" = ?', check_id(trace_id, 16, "trace id"))
    w.time_range("Timestamp", since, until)
    sql = (f'SELECT {_select(d, LOG_COLUMNS)} FROM {relation}{w.sql()} '
           f'ORDER BY "Timestamp" DESC LIMIT {check_limit(limit)}')
    return d.sql(sql), w.params


def stats_group(by) -> list[str]:
    keys = [k.strip() for k in (by.split(",") if isinstance(by, str) else by) if k.strip()]
    bad = [k for k in keys if k not in GROUP_COLUMNS]
    if bad:
        raise QueryError(f"unknown column {bad[0]!r} in --by: use {', '.join(GROUP_COLUMNS)}")
    return keys


def stats_sql(d: Dialect, by=("service", "name"), bucket="1h", since=None, until=None,
              service=None, limit=10000, relation="otel_traces"):
    keys = stats_group(by)
    unit = BUCKETS.get(bucket)
    if unit is None:
        raise QueryError(f"bad bucket {bucket!r}: use {', '.join(BUCKETS)}")
    w = _Where(d)
    if service:
        w.add('"ServiceName" = ?', service)
    w.time_range("Timestamp", since, until)
    groups = [f'"{GROUP_COLUMNS[k]}" AS "{k}"' for k in keys]
    pct = ", ".join(f'{d.percentile.format("Duration", q)} AS "p{int(q * 100)}"'
                    for q in (0.5, 0.95, 0.99))
    bucket_expr = f"date_trunc('{unit}', \"Timestamp\")"
    sql = (f'SELECT {d.ts_out.format("bucket")} AS "bucket", {", ".join(groups + [""])}'
           f'count(*) AS "count", '
           f"sum(CASE WHEN \"StatusCode\" = 'STATUS_CODE_ERROR' THEN 1 ELSE 0 END) AS \"errors\", "
           f'{pct}, max("Duration") AS "max" '
           f'FROM (SELECT *, {bucket_expr} AS "bucket" FROM {relation}{w.sql()}) AS t '
           f'GROUP BY {", ".join(["1"] + [str(i + 2) for i in range(len(keys))])} '
           f'ORDER BY 1, {", ".join(str(i + 2) for i in range(len(keys))) or "1"} '
           f'LIMIT {check_limit(limit)}')
    return d.sql(sql), w.params


def _bucket_seconds(bucket: str, start_ns: int) -> float:
    if bucket != "1mo":
        return {"1m": 60, "1h": 3600, "1d": 86400, "1w": 7 * 86400}[bucket]
    dt = datetime.fromtimestamp(start_ns / 1e9, tz=timezone.utc)
    nxt = dt.replace(year=dt.year + (dt.month == 12), month=dt.month % 12 + 1)
    return (nxt - dt).total_seconds()


def finish_stats(rows: list[dict], bucket: str) -> list[dict]:
    """Derived columns: error rate and throughput (items per second)."""
    for r in rows:
        r["count"] = int(r["count"])
        r["errors"] = int(r["errors"] or 0)
        r["error_rate"] = r["errors"] / r["count"] if r["count"] else 0.0
        for k in ("p50", "p95", "p99", "max"):
            r[k] = int(round(float(r[k]))) if r[k] is not None else None
        r["throughput"] = r["count"] / _bucket_seconds(bucket, int(r["bucket"]))
        r["bucket"] = int(r["bucket"])
    return rows


def finish_rows(rows: list[dict]) -> list[dict]:
    """JSON text columns as objects, timestamps as int ns (the same from
    every backend: DuckDB returns JSON as text, psycopg parses jsonb)."""
    for r in rows:
        for k in _JSON_COLUMNS.intersection(r):
            if isinstance(r[k], str):
                r[k] = json.loads(r[k])
        if "Timestamp" in r:
            r["Timestamp"] = int(r["Timestamp"])
    return rows
