"""``otelplug query`` and ``otelplug store`` as a user runs them: JSON
output, tables, every bad argument as one line with exit 2, a bad store as
one line naming it, and pruning through the process that holds the file."""
from __future__ import annotations

import json
import time

import pytest

from otelplug.store import open_store
from otelplug.store.serve import StoreServer
from tests.cli.helpers import run_cli

from .data import HOUR, log_records, span_records, spans

MS = 10**6


@pytest.fixture
def filled(store_url):
    now = time.time_ns() // HOUR * HOUR + 5 * 60 * 10**9
    s = open_store(store_url, mode="write")
    sdk = spans([dict(name="GET /", start=now, duration=30 * MS, attributes={"route": "/"}),
                 dict(name="db", start=now + MS, duration=10 * MS, parent=0, error=True),
                 dict(name="old", start=now - 5 * HOUR, duration=MS)])
    s.write(span_records(sdk))
    s.write(log_records([dict(time=now, body="hello", event="app.start")]))
    s.close()
    return store_url, format(sdk[0].context.trace_id, "032x"), now


def _json(*args):
    r = run_cli(*args, "--format", "json", timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_json_output(filled):
    url, tid, now = filled
    trace = _json("query", "trace", tid, "--store", url)
    assert [s["SpanName"] for s in trace] == ["GET /", "db"]
    assert trace[1]["ParentSpanId"] == trace[0]["SpanId"] and trace[1]["StatusCode"] == "STATUS_CODE_ERROR"
    spans_ = _json("query", "spans", "--status", "error", "--store", url)
    assert [s["SpanName"] for s in spans_] == ["db"]
    assert [s["SpanName"] for s in _json("query", "spans", "--where", "route=/", "--min-duration",
                                         "20ms", "--since", "2h", "--store", url)] == ["GET /"]
    logs = _json("query", "logs", "--event", "app.start", "--store", url)
    assert logs[0]["Body"] == "hello" and logs[0]["EventName"] == "app.start"
    stats = _json("query", "stats", "--by", "name", "--bucket", "1h", "--since", "1h", "--store", url)
    assert {r["name"]: (r["count"], r["errors"]) for r in stats} == {"GET /": (1, 0), "db": (1, 1)}


def test_time_bounds_beyond_the_stores_range_are_clamped(filled):
    """Bounds before 1970 or after 2262 (int64 nanoseconds) mean "from the
    beginning" / "to the end", as in the HTTP API: the query runs."""
    url, _, _ = filled
    everything = _json("query", "spans", "--since", "1600-01-01", "--until", "9999-12-31",
                       "--store", url)
    assert sorted(s["SpanName"] for s in everything) == ["GET /", "db", "old"]
    assert _json("query", "stats", "--since", "2300-01-01", "--store", url) == []


def test_tables(filled):
    url, tid, _ = filled
    r = run_cli("query", "trace", tid, "--store", url, timeout=60)
    assert r.returncode == 0 and f"trace {tid}: 2 spans" in r.stdout and "  db" in r.stdout
    r = run_cli("query", "stats", "--store", url, timeout=60)
    assert r.returncode == 0 and "p99 ms" in r.stdout and "GET /" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["trace", "xyz"], "bad trace id 'xyz': expected 32 hex digits"),
    (["spans", "--min-duration", "fast"], "bad --min-duration: invalid duration 'fast'"),
    (["spans", "--since", "yesterday-ish"], "bad --since: invalid time 'yesterday-ish'"),
    (["spans", "--status", "broken"], "bad status 'broken'"),
    (["spans", "--where", "novalue"], "bad --where 'novalue': expected KEY=VALUE"),
    (["spans", "--limit", "-3"], "bad limit '-3'"),
    (["stats", "--by", "service,colour"], "unknown column 'colour' in --by"),
    (["stats", "--bucket", "5m"], "bad bucket '5m'"),
    (["logs", "--min-severity", "loud"], "bad severity 'loud'"),
    (["logs", "--trace-id", "12"], "bad trace id '12'"),
    (["spans", "--format", "xml"], "invalid choice: 'xml'"),
])
def test_bad_arguments_are_one_line_exit_2(tmp_path, args, message):
    r = run_cli("query", *args, "--store", f"duckdb://{tmp_path}/none.duckdb")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_bad_store_is_one_line_exit_1(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"not a database" * 100)
    for store in (f"duckdb://{bad}", "ftp://nowhere", "postgresql://nobody@127.0.0.1:1/x"):
        r = run_cli("query", "spans", "--store", store, timeout=60)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert "store " in r.stderr


def test_prune_prints_how_many_records_went(filled):
    url, _, _ = filled
    r = run_cli("store", "prune", "--older-than", "2h", "--store", url, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("removed 1 records older than 2h"), r.stdout + r.stderr
    r = run_cli("store", "prune", "--older-than", "2h", "--store", url, timeout=60)
    assert r.stdout.startswith("removed 0 records")
    r = run_cli("store", "prune", "--older-than", "soon", "--store", url)
    assert r.returncode == 2 and "bad --older-than" in r.stderr


def test_prune_and_query_through_the_process_holding_the_file(tmp_path):
    """DuckDB: while one process writes, others go through its server."""
    url = f"duckdb://{tmp_path}/held.duckdb"
    now = time.time_ns() // HOUR * HOUR + 60 * 10**9
    holder = open_store(url, mode="write")
    server = StoreServer(holder)
    server.start()
    try:
        holder.write(span_records(spans([dict(name="a", start=now - 4 * HOUR, duration=1),
                                         dict(name="b", start=now, duration=1)])))
        r = run_cli("query", "spans", "--store", url, "--format", "json", timeout=60)
        assert r.returncode == 0 and {s["SpanName"] for s in json.loads(r.stdout)} == {"a", "b"}
        r = run_cli("store", "prune", "--older-than", "3h", "--store", url, timeout=60)
        assert r.returncode == 0 and r.stdout.startswith("removed 1 records"), r.stdout + r.stderr
        assert holder.count() == 1
        r = run_cli("query", "trace", "0" * 31 + "1", "--store", url, "--format", "json", timeout=60)
        assert r.returncode == 0 and json.loads(r.stdout) == []
    finally:
        server.close()
        holder.close()


def test_without_store_the_default_configs_store_is_read(tmp_path, monkeypatch):
    """The embedded default config writes duckdb://$OTELPLUG_OUTPUT_DIR/otelplug-store.duckdb."""
    s = open_store(f"duckdb://{tmp_path}/otelplug-store.duckdb", mode="write")
    s.write(span_records(spans([dict(name="from-default", start=time.time_ns(), duration=1)])))
    s.close()
    monkeypatch.setenv("OTELPLUG_OUTPUT_DIR", str(tmp_path))
    assert [r["SpanName"] for r in _json("query", "spans")] == ["from-default"]
