"""The store exporter in real sidecars (``otelplug run``) fed by real
producer processes: concurrent readers, SIGKILL and replay, two sidecars
into one PostgreSQL, PostgreSQL going down and coming back, a corrupt store
file."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

from .pg import Cluster
from .sidecar_helpers import (free_port, metric, scrape, start_producer, start_sidecar,
                              stop_producer, store_config, wait_for_spans, wait_metrics,
                              wait_until)

CLI = [sys.executable, "-m", "otelplug.cli.main"]
SENT = 'otelplug_exporter_sent_spans_total{exporter="store"}'
FAILED = 'otelplug_exporter_send_failed_spans_total{exporter="store"}'
RETRIES = 'otelplug_exporter_retries_total{exporter="store"}'


def _stop(sidecar):
    sidecar.send_signal(signal.SIGTERM)
    assert sidecar.wait(60) == 0


def test_queries_from_other_processes_while_the_sidecar_writes(tmp_path):
    url = f"duckdb://{tmp_path}/store.duckdb"
    port = free_port()
    sidecar = start_sidecar(tmp_path, store_config("readers", url, port))
    try:
        wait_metrics(port)
        producer = start_producer("readers", 500)
        seen = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline or len(seen) < 3:
            q = subprocess.run(CLI + ["query", "stats", "--by", "service", "--bucket", "1d",
                                      "--store", url, "--format", "json"],
                               capture_output=True, text=True, timeout=60)
            assert q.returncode == 0, q.stderr
            seen.append(sum(r["count"] for r in json.loads(q.stdout)))
            s = subprocess.run(CLI + ["query", "spans", "--service", "reliability", "--limit", "3",
                                      "--store", url], capture_output=True, text=True, timeout=60)
            assert s.returncode == 0 and "reliability" in s.stdout, s.stderr
        assert seen == sorted(seen) and seen[-1] > seen[0] > 0   # readers saw ingest go on
        result = stop_producer(producer)
        expected = set(result["span_ids"])
        got = wait_for_spans(url, expected)
        assert len(got) == len(set(got)) == len(expected)
        assert metric(port, FAILED) == 0
        assert metric(port, 'otelplug_store_written_rows_total{exporter="store",signal="traces"}') \
            == len(expected)
        assert metric(port, 'otelplug_store_size_bytes{exporter="store"}') > 0
        assert metric(port, 'otelplug_store_writes_total{exporter="store"}') > 0
    finally:
        _stop(sidecar)
    # the sidecar is gone: readers open the file themselves
    q = subprocess.run(CLI + ["store", "info", "--store", url], capture_output=True, text=True)
    assert q.returncode == 0 and f"{len(expected):,} rows" in q.stdout, q.stdout + q.stderr


def _kill_and_replay(tmp_path, url, rounds=3):
    rng = random.Random(7)
    port = free_port()
    producer = start_producer("replay", 1000)
    try:
        for i in range(rounds):
            sidecar = start_sidecar(tmp_path, store_config("replay", url, port), f"s{i}")
            wait_metrics(port)
            wait_until(lambda: scrape(port).get(SENT, 0) > 0, what="first stored batch")
            time.sleep(rng.uniform(0.2, 1.0))
            sidecar.send_signal(signal.SIGKILL)
            assert sidecar.wait(10) == -signal.SIGKILL
        result = stop_producer(producer)
    finally:
        if producer.poll() is None:
            producer.kill()
    final = start_sidecar(tmp_path, store_config("replay", url, port), "final")
    try:
        expected = set(result["span_ids"])
        assert result["dropped"] == 0
        got = wait_for_spans(url, expected)
        assert len(got) == len(set(got)), f"{len(got) - len(set(got))} duplicate spans visible"
        assert set(got) == expected
    finally:
        _stop(final)


def test_sigkill_mid_ingest_then_replay_leaves_no_duplicates_duckdb(tmp_path):
    _kill_and_replay(tmp_path, f"duckdb://{tmp_path}/store.duckdb")


def test_sigkill_mid_ingest_then_replay_leaves_no_duplicates_postgresql(tmp_path, pg_url):
    _kill_and_replay(tmp_path, pg_url, rounds=2)


def test_two_sidecars_write_one_postgresql_concurrently(tmp_path, pg_url):
    ports = [free_port(), free_port()]
    sidecars = [start_sidecar(tmp_path, store_config(f"host{i}", pg_url, ports[i]), f"host{i}")
                for i in range(2)]
    try:
        for p in ports:
            wait_metrics(p)
        producers = [start_producer(f"host{i}", 800) for i in range(2)]
        time.sleep(2)
        results = [stop_producer(p) for p in producers]
        expected = set().union(*(r["span_ids"] for r in results))
        got = wait_for_spans(pg_url, expected)
        assert len(got) == len(set(got)) == len(expected)
        for p, r in zip(ports, results):   # each sidecar wrote its own host's spans
            assert metric(p, SENT) >= len(r["span_ids"])
    finally:
        for s in sidecars:
            _stop(s)


def test_postgresql_down_then_back_loses_nothing(tmp_path):
    cluster = Cluster()
    try:
        cluster.start()
        port = free_port()
        sidecar = start_sidecar(tmp_path, store_config("pgdown", cluster.dsn, port))
        try:
            wait_metrics(port)
            producer = start_producer("pgdown", 300)
            wait_until(lambda: scrape(port).get(SENT, 0) > 0, what="first stored batch")
            cluster.stop()
            wait_until(lambda: scrape(port).get(RETRIES, 0) >= 3, what="retries while down")
            result = stop_producer(producer)
            cluster.start()
            expected = set(result["span_ids"])
            got = wait_for_spans(cluster.dsn, expected)
            assert len(got) == len(set(got)) == len(expected)
            assert metric(port, FAILED) == 0
        finally:
            _stop(sidecar)
        log = (tmp_path / "sidecar.log").read_text()
        assert "store postgresql://postgres@127.0.0.1:" in log and "retrying" in log
    finally:
        cluster.remove()


def test_corrupt_store_file_is_retried_and_other_pipelines_run(tmp_path):
    path = tmp_path / "store.duckdb"
    path.write_bytes(b"\x00garbage" * 4096)
    url = f"duckdb://{path}"
    out = tmp_path / "spans.jsonl"
    port = free_port()
    cfg = store_config("corrupt", url, port, exporters={"file": {"path": str(out)}},
                       pipelines={"traces/2": {"receivers": ["shm"], "processors": ["batch"],
                                               "exporters": ["file"]}})
    sidecar = start_sidecar(tmp_path, cfg)
    try:
        wait_metrics(port)
        producer = start_producer("corrupt", 300)
        wait_until(lambda: out.exists() and out.stat().st_size > 0, what="the file pipeline")
        wait_until(lambda: scrape(port).get(RETRIES, 0) >= 2, what="store retries")
        log = (tmp_path / "sidecar.log").read_text()
        assert f"store {url}: cannot open" in log
        # the operator moves the broken file away: the exporter recovers by itself
        path.rename(tmp_path / "store.broken")
        result = stop_producer(producer)
        expected = set(result["span_ids"])
        got = wait_for_spans(url, expected)
        assert len(got) == len(set(got)) == len(expected)
    finally:
        _stop(sidecar)


def test_retention_runs_in_the_sidecar_while_it_ingests(tmp_path):
    from otelplug.store import open_store

    from .data import HOUR, span_records, spans
    url = f"duckdb://{tmp_path}/store.duckdb"
    now = time.time_ns()
    s = open_store(url, mode="write")
    s.write(span_records(spans([dict(name="ancient", start=now - 5 * HOUR + i, duration=1)
                                for i in range(40)])))
    s.close()
    port = free_port()
    sidecar = start_sidecar(tmp_path, store_config("retention", url, port, retention="2h"))
    try:
        wait_metrics(port)
        producer = start_producer("retention", 300)
        wait_until(lambda: scrape(port).get('otelplug_store_pruned_rows_total{exporter="store"}', 0)
                   == 40, what="the old hour pruned")
        result = stop_producer(producer)
        got = wait_for_spans(url, set(result["span_ids"]))
        assert len(got) == len(result["span_ids"])          # ingest went on meanwhile
        r = subprocess.run(CLI + ["query", "spans", "--name", "ancient", "--store", url,
                                  "--format", "json"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and json.loads(r.stdout) == []
    finally:
        _stop(sidecar)


def test_a_second_sidecar_on_a_held_duckdb_file_retries_and_takes_over(tmp_path):
    """DuckDB has one writer per file: the second sidecar says so and retries,
    and writes everything once the first one is gone."""
    url = f"duckdb://{tmp_path}/store.duckdb"
    ports = [free_port(), free_port()]
    first = start_sidecar(tmp_path, store_config("held1", url, ports[0]), "first")
    wait_metrics(ports[0])
    second = start_sidecar(tmp_path, store_config("held2", url, ports[1]), "second")
    try:
        wait_metrics(ports[1])
        producer = start_producer("held2", 300)
        wait_until(lambda: scrape(ports[1]).get(RETRIES, 0) >= 2, what="the second sidecar retrying")
        assert "cannot open for writing" in (tmp_path / "second.log").read_text()
        _stop(first)
        result = stop_producer(producer)
        got = wait_for_spans(url, set(result["span_ids"]))
        assert len(got) == len(set(got)) == len(result["span_ids"])
    finally:
        if first.poll() is None:
            _stop(first)
        _stop(second)


FULL_DISK_SIDECAR = """
import resource, runpy, signal, sys
# the store's file may not grow past the limit: writes fail with EFBIG, as on
# a full disk (SIGXFSZ ignored, so the process sees the error instead of dying)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
sys.argv = ["otelplug", "run", "--config", sys.argv[2], "--log-level", "info"]
runpy.run_module("otelplug.cli.main", run_name="__main__")
"""


def test_disk_full_stops_ingest_and_it_resumes_when_space_returns(tmp_path):
    import resource
    url = f"duckdb://{tmp_path}/store.duckdb"
    port = free_port()
    cfg = tmp_path / "full.yaml"
    cfg.write_text(store_config("diskfull", url, port))
    log = open(tmp_path / "full.log", "ab")
    sidecar = subprocess.Popen([sys.executable, "-c", FULL_DISK_SIDECAR, str(3 << 20), str(cfg)],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_metrics(port)
        producer = start_producer("diskfull", 1500)
        wait_until(lambda: scrape(port).get(RETRIES, 0) >= 3, timeout=60, what="writes failing")
        text = (tmp_path / "full.log").read_text()
        assert f"store {url}: write failed" in text or f"store {url}: cannot open" in text, text[-2000:]
        sent_while_full = scrape(port).get(SENT, 0)
        resource.prlimit(sidecar.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))    # space returns
        result = stop_producer(producer)
        expected = set(result["span_ids"])
        got = wait_for_spans(url, expected, timeout=120)
        assert len(got) == len(set(got)) == len(expected) and result["dropped"] == 0
        assert scrape(port).get(SENT, 0) > sent_while_full
        assert metric(port, FAILED) == 0
    finally:
        _stop(sidecar)
