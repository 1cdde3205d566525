"""The store on both backends (DuckDB file, real PostgreSQL server): what
goes in comes out, replays are not duplicated, filters, exact aggregates,
retention, and bad stores named in the error."""
from __future__ import annotations

import time

import numpy as np
import pytest
from opentelemetry._logs import SeverityNumber

from otelplug.store import QueryError, StoreError, open_store
from otelplug.store.schema import META_TABLE

from .data import HOUR, log_records, metric_records, span_records, spans

MS = 10**6


@pytest.fixture
def now_ns():
    # the middle of the current hour's first half: test data stays in one
    # hourly partition however long the test takes
    hour = time.time_ns() // HOUR
    return hour * HOUR + 10 * 60 * 10**9


@pytest.fixture
def store(store_url):
    s = open_store(store_url, mode="write")
    yield s
    s.close()


def _trace(now_ns):
    return spans([
        dict(name="GET /cart", start=now_ns, duration=50 * MS, attributes={"http.route": "/cart"}),
        dict(name="db.query", start=now_ns + MS, duration=20 * MS, parent=0, event="retry",
             attributes={"db.system": "postgresql", "rows": 3}),
        dict(name="render", start=now_ns + 30 * MS, duration=5 * MS, parent=0, error=True),
    ])


def test_a_trace_comes_back_whole(store, now_ns):
    sdk = _trace(now_ns)
    assert store.write(span_records(sdk)) == 3
    tid = format(sdk[0].context.trace_id, "032x")
    got = store.trace(tid)
    assert [r["SpanName"] for r in got] == ["GET /cart", "db.query", "render"]
    root, db, render = got
    assert root["ParentSpanId"] == "" and db["ParentSpanId"] == root["SpanId"]
    assert root["SpanId"] == format(sdk[0].context.span_id, "016x")
    assert root["ServiceName"] == "shop" and root["ResourceAttributes"]["host.name"] == "h1"
    assert root["ScopeName"] == "store.test" and root["ScopeVersion"] == "0.1"
    assert root["Duration"] == 50 * MS and root["SpanKind"] == "SPAN_KIND_INTERNAL"
    # PostgreSQL keeps microseconds, DuckDB nanoseconds
    assert abs(root["Timestamp"] - now_ns) < 1000
    assert db["SpanAttributes"] == {"db.system": "postgresql", "rows": 3}
    assert db["Events"][0]["Name"] == "retry" and db["Events"][0]["Attributes"] == {"k": "v"}
    assert render["StatusCode"] == "STATUS_CODE_ERROR" and render["StatusMessage"] == "boom"
    assert store.trace("f" * 32) == []


def test_a_replayed_batch_is_stored_once(store, now_ns):
    rs = span_records(_trace(now_ns))
    assert store.write(rs) == 3
    assert store.write(rs) == 0          # the replay after a crash
    assert store.count() == 3
    mixed = span_records(_trace(now_ns) + spans([dict(name="x", start=now_ns, duration=1)]))
    assert store.write(mixed) == 4       # new spans of a partly replayed batch go in


def test_span_filters(store, now_ns):
    specs = [dict(name=f"op{i % 2}", start=now_ns + i * MS, duration=(i + 1) * MS,
                  error=(i % 5 == 0), attributes={"i": i, "tenant": "t%d" % (i % 3)},
                  service="api" if i < 6 else "worker") for i in range(10)]
    store.write(span_records(spans(specs)))
    names = lambda rows: sorted(r["SpanAttributes"]["i"] for r in rows)  # noqa: E731
    assert names(store.spans(service="api")) == [0, 1, 2, 3, 4, 5]
    assert names(store.spans(name="op1")) == [1, 3, 5, 7, 9]
    assert names(store.spans(where=["tenant=t1"])) == [1, 4, 7]
    assert names(store.spans(where=["tenant=t1", "i=4"])) == [4]
    assert len(store.spans(where=["host.name=h1"])) == 10          # a resource attribute
    assert names(store.spans(min_duration=0.008)) == [7, 8, 9]
    assert names(store.spans(max_duration=0.002)) == [0, 1]
    assert names(store.spans(status="error")) == [0, 5]
    assert names(store.spans(status="unset")) == [1, 2, 3, 4, 6, 7, 8, 9]
    assert names(store.spans(since=now_ns + 8 * MS)) == [8, 9]
    assert names(store.spans(until=now_ns + 2 * MS)) == [0, 1]
    assert [r["SpanAttributes"]["i"] for r in store.spans(limit=3)] == [9, 8, 7]   # newest first
    with pytest.raises(QueryError, match="status"):
        store.spans(status="bad")
    with pytest.raises(QueryError, match="KEY=VALUE"):
        store.spans(where=["novalue"])


def test_stats_are_exact(store, now_ns):
    durations = [(i + 1) * MS for i in range(100)]
    specs = [dict(name="checkout", start=now_ns + i * MS, duration=d, error=(i < 7))
             for i, d in enumerate(durations)]
    specs += [dict(name="browse", start=now_ns, duration=MS, service="web")]
    store.write(span_records(spans(specs)))
    rows = store.stats(by="service,name", bucket="1h")
    by = {(r["service"], r["name"]): r for r in rows}
    r = by[("shop", "checkout")]
    assert r["count"] == 100 and r["errors"] == 7 and r["error_rate"] == pytest.approx(0.07)
    for q in (50, 95, 99):   # exact: linear interpolation over the stored spans
        assert r[f"p{q}"] == pytest.approx(np.percentile(durations, q), abs=1)
    assert r["max"] == 100 * MS
    assert r["throughput"] == pytest.approx(100 / 3600)
    assert r["bucket"] == now_ns // HOUR * HOUR
    assert by[("web", "browse")]["count"] == 1
    for bucket in ("1m", "1d", "1w", "1mo"):
        total = sum(x["count"] for x in store.stats(by="service", bucket=bucket))
        assert total == 101
    assert [x["count"] for x in store.stats(by="service", bucket="1d", service="web")] == [1]
    with pytest.raises(QueryError, match="unknown column 'nope'"):
        store.stats(by="service,nope")
    with pytest.raises(QueryError, match="bucket"):
        store.stats(bucket="2h")


def test_logs_and_events(store, now_ns):
    tid, sid = 0x1234 << 64 | 0xABCD, 0x42
    store.write(log_records([
        dict(time=now_ns, body="started", severity=SeverityNumber.INFO),
        dict(time=now_ns + MS, body="slow query", severity=SeverityNumber.WARN, trace_id=tid,
             span_id=sid, attributes={"ms": 1200}),
        dict(time=now_ns + 2 * MS, body="", event="worker.died", severity=SeverityNumber.ERROR,
             attributes={"worker": 4}),
    ]))
    assert [r["Body"] for r in store.logs()] == ["", "slow query", "started"]
    died = store.logs(event="worker.died")
    assert len(died) == 1 and died[0]["LogAttributes"] == {"worker": 4}
    assert died[0]["SeverityNumber"] == 17 and died[0]["ServiceName"] == "shop"
    assert [r["Body"] for r in store.logs(min_severity="warn")] == ["", "slow query"]
    traced = store.logs(trace_id=format(tid, "032x"))
    assert len(traced) == 1 and traced[0]["SpanId"] == format(sid, "016x")
    assert store.logs(since=now_ns + MS, until=now_ns + 2 * MS)[0]["Body"] == "slow query"
    with pytest.raises(QueryError, match="severity"):
        store.logs(min_severity="loud")


def test_metric_points_land_in_their_tables(store, now_ns):
    store.write(metric_records(now_ns))
    g = store.fetch('SELECT "MetricName", "Value", "ServiceName" FROM otel_metrics_gauge', [])
    assert g == [{"MetricName": "queue.depth", "Value": 7.0, "ServiceName": "shop"}]
    s = store.fetch('SELECT "Value", "IsMonotonic", "AggregationTemporality" FROM otel_metrics_sum', [])
    assert s == [{"Value": 42.0, "IsMonotonic": True, "AggregationTemporality": 2}]
    h = store.fetch('SELECT "Count", "Sum", "BucketCounts", "ExplicitBounds", "Min", "Max" '
                    'FROM otel_metrics_histogram', [])
    assert h == [{"Count": 3, "Sum": 60.0, "BucketCounts": [1, 1, 1], "ExplicitBounds": [10.0, 50.0],
                  "Min": 5.0, "Max": 40.0}]


def test_retention_drops_whole_old_hours(store, now_ns):
    old = [dict(name="old", start=now_ns - 5 * HOUR + i, duration=1) for i in range(30)]
    older = [dict(name="older", start=now_ns - 30 * HOUR + i, duration=1) for i in range(20)]
    new = [dict(name="new", start=now_ns + i, duration=1) for i in range(10)]
    store.write(span_records(spans(old + older + new)))
    store.write(log_records([dict(time=now_ns - 5 * HOUR, body="old log")]))
    assert store.count() == 60
    assert store.prune(older_than=24 * 3600, now=now_ns / 1e9) == 20
    assert store.prune(older_than=2 * 3600, now=now_ns / 1e9) == 31     # 30 spans + 1 log
    assert store.count() == 10 and store.count("otel_logs") == 0
    assert {r["SpanName"] for r in store.spans()} == {"new"}
    assert store.prune(older_than=2 * 3600, now=now_ns / 1e9) == 0
    store.write(span_records(spans(new)))          # ingest goes on after pruning
    assert store.count() == 20


def test_size_cap_drops_oldest_hours_first(store, now_ns):
    for h in (3, 2, 1):
        store.write(span_records(spans([dict(name=f"h{h}", start=now_ns - h * HOUR + i, duration=1)
                                        for i in range(50)])))
    store.write(span_records(spans([dict(name="now", start=now_ns, duration=1)])))
    removed = store.prune(max_bytes=1, now=now_ns / 1e9)    # everything but the current hour
    assert removed == 150 and {r["SpanName"] for r in store.spans()} == {"now"}


def _set_version(url, version):
    if url.startswith("duckdb://"):
        import duckdb
        con = duckdb.connect(url[len("duckdb://"):])
        con.execute(f"UPDATE {META_TABLE} SET value = ? WHERE key = 'schema_version'", [str(version)])
        con.close()
    else:
        import psycopg
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(f"UPDATE {META_TABLE} SET value = %s WHERE key = 'schema_version'", [str(version)])


def test_wrong_schema_version_is_named(store_url):
    open_store(store_url, mode="write").close()
    _set_version(store_url, 999)
    for mode in ("write", "read"):
        with pytest.raises(StoreError, match=r"schema version 999.*version 1"):
            open_store(store_url, mode=mode)


def test_corrupt_or_foreign_duckdb_file_is_named(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"this is not a database" * 1000)
    for mode in ("write", "read"):
        with pytest.raises(StoreError, match=f"store duckdb://{bad}: "):
            open_store(f"duckdb://{bad}", mode=mode)
    with pytest.raises(StoreError, match="no such file"):
        open_store(f"duckdb://{tmp_path}/missing.duckdb", mode="read")


def test_unreachable_postgresql_is_named():
    with pytest.raises(StoreError, match=r"store postgresql://nobody@127.0.0.1:1/db: open failed"):
        open_store("postgresql://nobody@127.0.0.1:1/db", mode="write")


def test_duckdb_trace_lookup_through_sealed_hours(duckdb_url, now_ns):
    """Finished hours get a sorted trace-id table; lookups use it, late spans
    of a sealed hour are still found, retention drops it with its hour."""
    store = open_store(duckdb_url, mode="write")
    try:
        old = spans([dict(name="root", start=now_ns - 3 * HOUR, duration=MS),
                     dict(name="child", start=now_ns - 3 * HOUR + 1, duration=1, parent=0)])
        other = spans([dict(name="elsewhere", start=now_ns - 2 * HOUR, duration=1)])
        store.write(span_records(old + other))
        assert store.seal(now=now_ns / 1e9) == 2 and store.seal(now=now_ns / 1e9) == 0
        tid = format(old[0].context.trace_id, "032x")
        assert [r["SpanName"] for r in store.trace(tid)] == ["root", "child"]
        late = spans([dict(name="late", start=now_ns - 3 * HOUR + 5, duration=1)])
        late[0]._context = late[0].context.__class__(old[0].context.trace_id, late[0].context.span_id,
                                                     False, late[0].context.trace_flags)
        store.write(span_records(late))
        assert [r["SpanName"] for r in store.trace(tid)] == ["root", "child", "late"]
        assert store.prune(older_than=2 * 3600, now=now_ns / 1e9) == 3
        assert store.trace(tid) == []
        assert store.count() == 1
    finally:
        store.close()
    reader = open_store(duckdb_url, mode="read")       # another process's view after a restart
    try:
        tid2 = format(other[0].context.trace_id, "032x")
        assert [r["SpanName"] for r in reader.trace(tid2)] == ["elsewhere"]
    finally:
        reader.close()
