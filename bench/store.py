"""The telemetry store: which engine, how fast in, how fast out, how big.
A benchmark, not a test.  Sections (``--only`` picks some):

  engines   Why DuckDB.  The same span rows (columns as the store exporter
            builds them from a sidecar batch) ingested by the candidate
            embedded engines, each in its fastest bulk path from Python:
            DuckDB registering the numpy columns and INSERT .. SELECT (one
            statement per batch), SQLite executemany in one transaction (its
            bulk path; it has no columnar ingest), and DuckDB with one
            INSERT per span, to show why the store never does that.  Rows/s
            and bytes on disk per span; ratios against DuckDB bulk.
            PostgreSQL COPY is measured too when a server is available.

  ingest    shm -> sidecar -> store on one core: a real sidecar
            (``otelplug run``) with the store exporter (DuckDB, 1 thread),
            producers writing through ShmSpanProcessor flat out; spans/s
            stored and sidecar CPU per span (CPU time from the first span to
            the last delivered), next to the same sidecar with a silent
            debug exporter (the pipeline alone: ring, batch, exporter
            helper) as the peer in the same run.  Then the sidecar's RSS
            while producers offer 10k spans/s.  The same for PostgreSQL.

  queries   With --spans spans stored (default 10 M for DuckDB, scaled down
            for PostgreSQL; synthetic spans shaped like the demo's: 10
            services, 40 operations, 8-span traces, spread over 24 h):
            trace by id, one service's spans in the last hour, a 1-hour
            stats query (count, errors, exact p50/p95/p99, max per service
            and operation).  Medians of 7.  Bytes on disk per span.

PostgreSQL: ``--pg-dsn postgresql://...``, or a throwaway cluster from
/usr/lib/postgresql/15/bin (as tests/store/pg.py) when it is installed.

    python bench/store.py                          # everything, ~10-15 min
    python bench/store.py --only engines,queries --spans 1000000
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from otelplug.store import open_store, schema  # noqa: E402
from otelplug.store.rows import hex_ids  # noqa: E402

HOUR = 3600 * 10**9


def _med(xs):
    return statistics.median(xs) if xs else float("nan")


# -- synthetic spans, as the exporter's columns ------------------------------------------------
SERVICES = [f"demo-svc-{i}" for i in range(10)]
OPS = [f"GET /api/v1/resource{i}/{{id}}" for i in range(40)]


def synthetic(n: int, rng, t_end_ns: int, spread_ns: int = 24 * HOUR) -> dict:
    """n spans in traces of 8, times spread over ``spread_ns`` before
    t_end_ns: the exporter's column dict for otel_traces."""
    traces = (n + 7) // 8
    tid = hex_ids(rng.integers(0, 256, (traces, 16), dtype=np.uint8), 16)
    trace_of = np.repeat(np.arange(traces), 8)[:n]
    sid_raw = rng.integers(1, 2**63, n, dtype=np.int64).astype(np.uint64)
    sid = hex_ids(sid_raw.astype(">u8"), 8)
    pos = np.tile(np.arange(8), traces)[:n]
    parent = np.where(pos == 0, "", np.roll(sid, 1)).astype(object)
    start = t_end_ns - rng.integers(0, spread_ns, traces)[trace_of] + pos * 1000
    order = np.argsort(start, kind="stable")           # arrival is roughly in time order
    svc = rng.integers(0, len(SERVICES), traces)[trace_of]
    op = rng.integers(0, len(OPS), n)
    dur = rng.lognormal(13, 1.2, n).astype(np.int64)   # ~0.4 ms median, long tail
    err = rng.random(n) < 0.02
    attr_pool = np.array([f'{{"http.request.method":"GET","http.route":"/api/v1/resource{i % 40}/{{id}}",'
                          f'"http.response.status_code":{200 if i % 50 else 500},"server.port":8080,'
                          f'"user.id":"u{i}"}}' for i in range(1000)], dtype=object)
    res_pool = np.array([f'{{"service.name":"{s}","host.name":"host-1","process.pid":{1000 + i},'
                         f'"telemetry.sdk.language":"python","telemetry.sdk.version":"1.45.1"}}'
                         for i, s in enumerate(SERVICES)], dtype=object)
    cols = {
        "Timestamp": start.astype(np.int64).view("datetime64[ns]"),
        "TraceId": tid[trace_of], "SpanId": sid, "ParentSpanId": parent,
        "TraceState": np.full(n, "", object), "SpanName": np.array(OPS, object)[op],
        "SpanKind": np.where(pos == 0, "SPAN_KIND_SERVER", "SPAN_KIND_INTERNAL").astype(object),
        "ServiceName": np.array(SERVICES, object)[svc], "ResourceAttributes": res_pool[svc],
        "ScopeName": np.full(n, "otelplug.demo.web", object), "ScopeVersion": np.full(n, "0.1.0", object),
        "SpanAttributes": attr_pool[rng.integers(0, 1000, n)], "Duration": dur,
        "StatusCode": np.where(err, "STATUS_CODE_ERROR", "STATUS_CODE_UNSET").astype(object),
        "StatusMessage": np.where(err, "boom", "").astype(object),
        "Events": np.full(n, "[]", object), "Links": np.full(n, "[]", object),
    }
    return {k: v[order] for k, v in cols.items()}


def _chunks(cols: dict, size: int):
    n = len(cols["SpanId"])
    for i in range(0, n, size):
        yield {k: v[i:i + size] for k, v in cols.items()}


# -- PostgreSQL ---------------------------------------------------------------------------------
class PG:
    """A server for the PostgreSQL rows: --pg-dsn, or a throwaway cluster."""

    def __init__(self, dsn):
        self.cluster = None
        self.dsn = dsn
        if dsn is None:
            from tests.store.pg import Cluster, available
            if not available():
                return
            self.cluster = Cluster()
            self.cluster.start()
            self.dsn = self.cluster.dsn

    def database(self, name) -> str | None:
        if self.dsn is None:
            return None
        from tests.store.pg import new_database
        return new_database(self.dsn, name)

    def close(self):
        if self.cluster is not None:
            self.cluster.remove()


# -- engines ------------------------------------------------------------------------------------
# the same aggregate on every engine (SQLite has no percentiles): per service
# and operation, count, errors, mean and max duration
AGG = ('SELECT "ServiceName", "SpanName", count(*) AS n, '
       "sum(CASE WHEN \"StatusCode\" = 'STATUS_CODE_ERROR' THEN 1 ELSE 0 END) AS errors, "
       'avg("Duration") AS mean, max("Duration") AS mx FROM otel_traces GROUP BY 1, 2')


def bench_engines(args, tmp, pg: PG):
    rng = np.random.default_rng(1)
    n = args.engine_rows
    cols = synthetic(n, rng, time.time_ns(), spread_ns=HOUR // 2)
    batch = 8192
    names = schema.TRACES.column_names
    res = {}
    for rep in range(args.repeats):
        # DuckDB bulk: the store's own write path
        path = os.path.join(tmp, f"engine-{rep}.duckdb")
        st = open_store(f"duckdb://{path}", mode="write", threads=1)
        t0 = time.perf_counter()
        for c in _chunks(cols, batch):
            st.write_tables({"otel_traces": c})
        dt = time.perf_counter() - t0
        st._con.execute("CHECKPOINT")
        q_ms, _ = _time(lambda: st.fetch(AGG, []), 5)
        st.close()
        res.setdefault("duckdb bulk (register numpy + INSERT..SELECT)", []).append(
            (n / dt, os.path.getsize(path) / n, q_ms))
        # SQLite: executemany of tuples in one transaction per batch
        path = os.path.join(tmp, f"engine-{rep}.sqlite")
        con = sqlite3.connect(path)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"CREATE TABLE otel_traces ({', '.join(chr(34) + c + chr(34) for c in names)})")
        con.execute('CREATE INDEX t_ts ON otel_traces ("Timestamp")')
        t0 = time.perf_counter()
        for c in _chunks(cols, batch):
            vals = [c[k].view(np.int64).tolist() if k == "Timestamp" else c[k].tolist() for k in names]
            with con:
                con.executemany(f"INSERT INTO otel_traces VALUES ({', '.join('?' * len(names))})",
                                zip(*vals))
        dt = time.perf_counter() - t0
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        q_ms, _ = _time(lambda: con.execute(AGG).fetchall(), 5)
        con.close()
        res.setdefault("sqlite executemany (+ time index)", []).append(
            (n / dt, os.path.getsize(path) / n, q_ms))
        # DuckDB, one INSERT per span (a tenth of the rows: it is slow)
        m = max(n // 50, 1000)
        import duckdb
        path = os.path.join(tmp, f"engine-{rep}-rows.duckdb")
        con = duckdb.connect(path, config={"threads": 1})
        con.execute(f"CREATE TABLE otel_traces ({schema.TRACES.render_columns(0)})")
        sub = {k: v[:m] for k, v in cols.items()}
        vals = list(zip(*[sub[k].view(np.int64).tolist() if k == "Timestamp" else sub[k].tolist()
                          for k in names]))
        ph = ", ".join(["make_timestamp_ns(?)"] + ["?"] * (len(names) - 1))
        t0 = time.perf_counter()
        con.execute("BEGIN")
        for v in vals:
            con.execute(f"INSERT INTO otel_traces VALUES ({ph})", v)
        con.execute("COMMIT")
        dt = time.perf_counter() - t0
        con.close()
        res.setdefault(f"duckdb one INSERT per span ({m:,} rows)", []).append(
            (m / dt, float("nan"), float("nan")))
        url = pg.database(f"bench_engine_{rep}")
        if url:
            st = open_store(url, mode="write")
            t0 = time.perf_counter()
            for c in _chunks(cols, batch):
                st.write_tables({"otel_traces": c})
            dt = time.perf_counter() - t0
            size = st.size_bytes()
            q_ms, _ = _time(lambda: st.fetch(AGG, []), 5)
            st.close()
            res.setdefault("postgresql COPY + ON CONFLICT (server)", []).append((n / dt, size / n, q_ms))
    base = _med([r[0] for r in res["duckdb bulk (register numpy + INSERT..SELECT)"]])
    print(f"\n### engines: {n:,} span rows in batches of {batch}, medians of {args.repeats}\n")
    print("| engine, ingest path | rows/s | vs duckdb bulk | bytes on disk per span | "
          "group-by aggregate over all rows, ms |")
    print("|---|---|---|---|---|")
    for k, rs in res.items():
        rate = _med([r[0] for r in rs])
        size = _med([r[1] for r in rs])
        q = _med([r[2] for r in rs])
        print(f"| {k} | {rate:,.0f} | {rate / base:.2f}x | {'-' if size != size else f'{size:.0f}'} "
              f"| {'-' if q != q else f'{q:.1f}'} |")


# -- ingest through a real sidecar ----------------------------------------------------------------
SIDECAR = """\
receivers:
  shm: {{channels: [""]}}
processors:
  batch: {{send_batch_size: 8192, timeout: 200ms}}
exporters:
{exporter}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{port}}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [batch], exporters: [{eid}]}}
"""


def _scrape(port, name) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rpartition(" ")[2])
    return 0.0


def _sidecar_run(args, tmp, kind, url, mode, rate, seconds):
    """One sidecar with exporter ``kind``; producers write for ``seconds``
    (``max``: flat out, ``rate``: paced to ``rate`` spans/s in total), then
    the sidecar drains.  CPU per span = sidecar CPU from the first span to
    the last one delivered / spans delivered: CPU time, so a loaded machine
    slows it less than wall time.  Also spans/s (wall, producer-limited on a
    busy machine) and the sidecar's max RSS."""
    import multiprocessing as mp

    import psutil
    import sidecar_throughput as stp
    from tests.sidecar.test_reliability import free_port
    port = free_port()
    if kind == "store":
        exp = (f"  store:\n    url: {url}\n    serve_reads: false\n    retention: '0'\n"
               f"    memory_limit: {args.memory_limit}\n")
    elif kind == "debug":
        exp = "  debug:\n    sampling_initial: 0\n    sampling_thereafter: 0\n"
    else:
        exp = f"  file:\n    path: {url}\n    format: proto\n"
    cfg = os.path.join(tmp, f"sidecar-{kind}-{mode}.yaml")
    with open(cfg, "w") as f:
        f.write(SIDECAR.format(exporter=exp, port=port, eid=kind))
    shm = tempfile.mkdtemp(prefix="otelplug-bench-shm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    env = {**os.environ, "OTELPLUG_SHM_DIR": shm}
    env.pop("OTELPLUG_CHANNEL", None)
    side = subprocess.Popen([sys.executable, "-m", "otelplug.cli.main", "run", "--config", cfg,
                             "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    metric = f'otelplug_exporter_sent_spans_total{{exporter="{kind}"}}'
    try:
        deadline = time.monotonic() + 60
        while _scrape(port, metric) < 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        ps = psutil.Process(side.pid)
        nprod = args.producers if mode == "rate" else 1
        procs = [ctx.Process(target=stp.producer, args=(shm, mode, rate / nprod, seconds, q))
                 for _ in range(nprod)]
        cpu0, t0 = sum(ps.cpu_times()[:2]), time.perf_counter()
        for p in procs:
            p.start()
        rss = 0
        reports = []
        while len(reports) < nprod:
            rss = max(rss, ps.memory_info().rss)
            try:
                reports.append(q.get(timeout=0.2))
            except Exception:
                pass
        written = sum(r["written"] for r in reports)
        deadline = time.monotonic() + 300
        while _scrape(port, metric) < written and time.monotonic() < deadline:
            rss = max(rss, ps.memory_info().rss)
            time.sleep(0.1)
        cpu1, t1 = sum(ps.cpu_times()[:2]), time.perf_counter()
        got = _scrape(port, metric)
        for p in procs:
            p.join(60)
        if got < written:
            print(f"  ({kind}: only {got:.0f} of {written} spans delivered in time)", file=sys.stderr)
        n = max(got, 1)
        return {"spans_per_s": got / (t1 - t0), "us_per_span": (cpu1 - cpu0) / n * 1e6,
                "cores": (cpu1 - cpu0) / (t1 - t0), "rss_mib": rss / 2**20, "spans": got}
    finally:
        side.terminate()          # SIGTERM: the sidecar drains and exits
        side.wait(timeout=120)
        shutil.rmtree(shm, ignore_errors=True)


def bench_ingest(args, tmp, pg: PG):
    res = {}
    for rep in range(args.repeats):
        targets = [("store", f"duckdb://{tmp}/ingest-{rep}.duckdb", "store → DuckDB"),
                   ("debug", None, "debug, silent (peer: the pipeline alone)")]
        url = pg.database(f"bench_ingest_{rep}")
        if url:
            targets.append(("store", url, "store → PostgreSQL"))
        for kind, where, label in targets:
            r = _sidecar_run(args, tmp, kind, where, "max", 0, args.window)
            res.setdefault(("max", label), []).append(r)
            print(f"  rep {rep + 1} max  {label}: {r['spans']:,.0f} spans, {r['spans_per_s']:,.0f}/s, "
                  f"{r['us_per_span']:.2f} us/span, "
                  f"{r['cores']:.2f} cores, RSS {r['rss_mib']:.0f} MiB", file=sys.stderr)
        for kind, where, label in targets:
            if kind != "store":
                continue
            where = where.replace("ingest-", "rss-") if where.startswith("duckdb") else where
            r = _sidecar_run(args, tmp, kind, where, "rate", args.rate, args.window)
            res.setdefault(("rate", label), []).append(r)
            print(f"  rep {rep + 1} {args.rate:.0f}/s {label}: {r['spans_per_s']:,.0f}/s stored, "
                  f"RSS max {r['rss_mib']:.0f} MiB, {r['us_per_span']:.2f} us/span", file=sys.stderr)
    peer = _med([r["us_per_span"] for r in res[("max", "debug, silent (peer: the pipeline alone)")]])
    print(f"\n### ingest: shm -> sidecar -> destination, medians of {args.repeats}\n")
    print("| sidecar exporter | spans/s stored (max) | sidecar CPU us/span | one-core capacity "
          "(1e6 / us) | CPU vs the pipeline alone | cores used |")
    print("|---|---|---|---|---|---|")
    for (mode, label), rs in res.items():
        if mode != "max":
            continue
        us = _med([r["us_per_span"] for r in rs])
        print(f"| {label} | {_med([r['spans_per_s'] for r in rs]):,.0f} | {us:.2f} | {1e6 / us:,.0f}/s "
              f"| {us / peer:.2f}x | {_med([r['cores'] for r in rs]):.2f} |")
    print(f"\n| at {args.rate:,.0f} spans/s offered | spans/s stored | sidecar max RSS MiB | CPU us/span |")
    print("|---|---|---|---|")
    for (mode, label), rs in res.items():
        if mode == "rate":
            print(f"| {label} | {_med([r['spans_per_s'] for r in rs]):,.0f} | "
                  f"{_med([r['rss_mib'] for r in rs]):.0f} | {_med([r['us_per_span'] for r in rs]):.2f} |")


# -- queries --------------------------------------------------------------------------------------
def _fill(store, n, rng, now_ns):
    t0 = time.perf_counter()
    chunk = 1_000_000
    done = 0
    while done < n:
        m = min(chunk, n - done)
        cols = synthetic(m, rng, now_ns)
        for c in _chunks(cols, 100_000):
            store.write_tables({"otel_traces": c})
        done += m
    return time.perf_counter() - t0


def _time(fn, k=7):
    ts = []
    for _ in range(k):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return _med(ts) * 1e3, out


def bench_queries(args, tmp, pg: PG):
    now_ns = time.time_ns()
    rows = []
    targets = [("DuckDB", f"duckdb://{tmp}/queries.duckdb", args.spans)]
    url = pg.database("bench_queries")
    if url:
        targets.append(("PostgreSQL", url, args.pg_spans))
    for label, url, n in targets:
        rng = np.random.default_rng(2)
        store = open_store(url, mode="write", **({"threads": 2} if label == "DuckDB" else {}))
        fill = _fill(store, n, rng, now_ns)
        if label == "DuckDB":
            t0 = time.perf_counter()
            store.maintain()      # what the sidecar's retention thread does for finished hours
            seal = time.perf_counter() - t0
            print(f"  DuckDB: trace-id tables of {n:,} spans' finished hours built in {seal:.1f} s",
                  file=sys.stderr)
            store._con.execute("CHECKPOINT")
            size = store.file_bytes()
        else:
            store._conn().execute("ANALYZE")
            size = store.size_bytes()
        some = store.fetch('SELECT "TraceId" FROM otel_traces LIMIT 1 OFFSET 12345', [])[0]["TraceId"]
        t_trace, tr = _time(lambda: store.trace(some))
        since = now_ns - HOUR
        t_spans, sp = _time(lambda: store.spans(service="demo-svc-3", since=since, limit=100))
        t_stats, stt = _time(lambda: store.stats(by="service,name", bucket="1h", since=since,
                                                 until=now_ns))
        assert len(tr) == 8 and len(sp) == 100 and stt, (len(tr), len(sp), len(stt))
        rows.append((label, n, fill, t_trace, t_spans, t_stats, size / n))
        store.close()
    print(f"\n### queries, medians of 7 (spans spread over 24 h; the last hour holds ~1/24)\n")
    print("| store | spans stored | fill time s (spans/s) | trace by id ms | one service, last hour "
          "(100 newest) ms | 1-hour stats by service,name ms | bytes on disk per span |")
    print("|---|---|---|---|---|---|---|")
    for label, n, fill, a, b, c, bps in rows:
        print(f"| {label} | {n:,} | {fill:.0f} ({n / fill:,.0f}/s) | {a:.1f} | {b:.1f} | {c:.1f} | {bps:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="engines,ingest,queries")
    ap.add_argument("--engine-rows", type=int, default=200_000)
    ap.add_argument("--spans", type=int, default=10_000_000, help="spans stored for the query section (DuckDB)")
    ap.add_argument("--pg-spans", type=int, default=1_000_000, help="the same for PostgreSQL")
    ap.add_argument("--rate", type=float, default=10_000, help="offered spans/s for the RSS rows")
    ap.add_argument("--producers", type=int, default=2, help="producer processes for the rate rows")
    ap.add_argument("--window", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--memory-limit", default="64MB", help="the store exporter's DuckDB memory_limit")
    ap.add_argument("--pg-dsn", default=None)
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    only = set(args.only.split(","))
    print(f"# store bench: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load avg {os.getloadavg()[0]:.2f}")
    import duckdb
    print(f"duckdb {duckdb.__version__}, sqlite {sqlite3.sqlite_version}")
    tmp = tempfile.mkdtemp(prefix="otelplug-store-bench-")
    pg = PG(args.pg_dsn) if not args.no_pg else PG.__new__(PG)
    if args.no_pg:
        pg.cluster = pg.dsn = None
    t0 = time.perf_counter()
    try:
        if "engines" in only:
            bench_engines(args, tmp, pg)
        if "ingest" in only:
            bench_ingest(args, tmp, pg)
        if "queries" in only:
            bench_queries(args, tmp, pg)
    finally:
        pg.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload avg after: {os.getloadavg()[0]:.2f}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
