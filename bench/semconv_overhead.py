"""Semantic-convention checking in the sidecar (issue 5): what the
``semconv`` processor adds to the sidecar's CPU per span.

Spans
    Produced by real instrumentation libraries in this process before the
    measurement: ``opentelemetry-instrumentation-flask`` (Flask test client:
    routes with path parameters, 404s, a route that raises - a span with an
    ``exception`` event), ``-requests`` (to a local ``http.server``) and
    ``-sqlite3`` (in-memory database), all with their default (old, partly
    deprecated) conventions, plus a share of hand-written spans with stable
    HTTP conventions (``http.request.method`` enum ...) and custom
    attributes.  About 2,000 distinct spans are encoded once and cycled.
    Values (urls, ids, statements) differ; shapes repeat, as in production.

Two measurements, each with and without the processor, interleaved, in the
same run, ``--repeats`` times (median reported):

sidecar
    The real thing: an in-process ``Service`` built from a config with the
    ``shm`` receiver, ``batch`` and (or not) ``semconv`` against upstream
    ``main``, exporting to a ``null`` exporter (registered by this script)
    that serialises the OTLP request like the ``otlp`` exporters do and
    throws it away (``--no-encode``: not even that).  A separate producer
    process writes the span records into a shared-memory ring; the sidecar
    CPU is this process's ``time.process_time()`` from the producer's start
    until the exporter has every span.  The producer's CPU is not included.
    The processor's own CPU is taken with ``time.thread_time()`` around its
    ``process``: attributes checked per second = attributes of the checked
    spans (span, event and link attributes) / that time.

direct
    No threads or rings: RecordSets of 2,048 spans through the processor and
    the exporter's encoding only, CPU per span by ``process_time``, the two
    pipelines fed alternately in chunks of 4 batches (median over chunks) -
    the low-noise view of the same ratio.

    python bench/semconv_overhead.py                    # ~1 minute
    python bench/semconv_overhead.py --spans 400000 --repeats 5
    python bench/semconv_overhead.py --registry ../shared/semconv-upstream/main
"""
from __future__ import annotations

import argparse
import http.server
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from otelplug import codec  # noqa: E402
from otelplug.codec.recordset import RecordSet  # noqa: E402

DEFAULT_REGISTRY = ROOT.parent / "shared" / "semconv-upstream" / "main"


# ---------------------------------------------------------------- the spans

def real_spans(rounds: int):
    """Spans from flask, requests and sqlite3 instrumentation (+ hand-made)."""
    import logging
    import sqlite3

    import requests
    from flask import Flask
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("demo").setLevel(logging.CRITICAL)
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "bench-shop",
                                                  "service.version": "1.4.2",
                                                  "deployment.environment.name": "bench"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code = 404 if "missing" in self.path else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"

    app = Flask("demo")
    SQLite3Instrumentor().instrument(tracer_provider=tp)
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("create table users(id integer primary key, name text)")
    db.executemany("insert into users values (?, ?)", [(i, f"user{i}") for i in range(100)])

    @app.route("/users/<int:uid>")
    def user(uid):
        cur = db.cursor()         # the instrumentation wraps cursors (not Connection.execute)
        cur.execute("select name from users where id = ?", (uid,))
        row = cur.fetchone()
        return row[0] if row else ("nope", 404)

    @app.route("/fail")
    def fail():
        raise RuntimeError("boom")

    FlaskInstrumentor().instrument_app(app, tracer_provider=tp)
    RequestsInstrumentor().instrument(tracer_provider=tp)
    client = app.test_client()
    tracer = tp.get_tracer("bench.app", "1.0")
    session = requests.Session()
    try:
        for i in range(rounds):
            client.get(f"/users/{i % 120}?page={i % 7}")
            session.get(f"{base}/{'missing' if i % 9 == 0 else 'items'}/{i}")
            if i % 20 == 0:
                client.get("/fail")
            # stable HTTP conventions, an enum, custom attributes
            with tracer.start_as_current_span("GET /api/orders/{id}", kind=SpanKind.SERVER, attributes={
                    "http.request.method": "GET" if i % 5 else "PATCH", "url.path": f"/api/orders/{i}",
                    "url.scheme": "https", "http.route": "/api/orders/{id}",
                    "http.response.status_code": 200 if i % 11 else 503,
                    "server.address": "shop.example", "server.port": 443,
                    "client.address": f"10.1.{i % 50}.{i % 200}", "network.protocol.version": "1.1",
                    "user_agent.original": "Mozilla/5.0"}):
                with tracer.start_as_current_span("price.compute", attributes={
                        "app.cart.items": i % 13, "app.currency": "EUR", "app.tags": ("a", "b")}):
                    pass
    finally:
        RequestsInstrumentor().uninstrument()
        SQLite3Instrumentor().uninstrument()
        srv.shutdown()
    return list(mem.get_finished_spans())


@dataclass
class Corpus:
    payloads: list[bytes]
    defs: dict
    attrs: np.ndarray          # attributes per span (span + events + links)


def encode_corpus(spans) -> Corpus:
    defs, payloads, attrs = {}, [], []
    for s in spans:
        rp, sp = codec.encode_resource(s.resource), codec.encode_scope(s.instrumentation_scope)
        rk, sk = codec.definition_key(rp), codec.definition_key(sp)
        defs[rk], defs[sk] = rp, sp
        payloads.append(codec.encode_span(s, rk, sk))
        attrs.append(len(s.attributes) + sum(len(e.attributes) for e in s.events)
                     + sum(len(lk.attributes) for lk in s.links))
    return Corpus(payloads, defs, np.array(attrs, np.int64))


def record_set(payloads, defs, signal: str = "traces") -> RecordSet:
    return RecordSet.from_parts(signal, payloads, defs)


# ------------------------------------------------------- the null exporter

def null_exporter_factory():
    from dataclasses import dataclass as dc

    from otelplug.sidecar.component import Factory, Kind
    from otelplug.sidecar.exporters.otlp import payload_for
    from otelplug.sidecar.helpers.exporter import Exporter, ExporterSettingsMixin

    @dc
    class NullConfig(ExporterSettingsMixin):
        encode: bool = True

    class NullExporter(Exporter):
        """Serialises the OTLP request like the otlp exporters, sends nowhere."""
        done = None

        def __init__(self, settings, config):
            super().__init__(settings, config)
            self.spans = 0
            self.lock = threading.Lock()
            self.target = 0
            self.done = threading.Event()

        def send(self, records, timeout):
            if self.config.encode:
                payload_for(records)
            with self.lock:
                self.spans += records.items
                if self.target and self.spans >= self.target:
                    self.done.set()

    return Factory("nullexp", Kind.EXPORTER, NullConfig, NullExporter)


# ------------------------------------------------------------ the producer

def _produce(channel: str, payloads: list[bytes], defs: dict, n: int, go, shm_dir: str):
    os.environ["OTELPLUG_SHM_DIR"] = shm_dir
    from otelplug.codec import types as wire
    from otelplug.ring import Producer
    p = Producer(channel, capacity=1 << 26)
    for k, v in defs.items():
        p.define(k, v)
    go.wait()
    sent, m = 0, len(payloads)
    while sent < n:
        i = sent % m
        chunk = payloads[i:i + min(256, n - sent, m - i)]
        got = p.write_many_wait(wire.SPAN, chunk, 10.0)
        if got <= 0:
            raise SystemExit("producer: ring stayed full for 10 s")
        sent += got
    p.close() if hasattr(p, "close") else None


CONFIG = """
receivers:
  shm:
    channels: [{channel}]
    max_batch_records: 4096
processors:
  batch:
    send_batch_size: 2048
    timeout: 20ms
  semconv:
    registry: {registry}
exporters:
  nullexp:
    encode: {encode}
    retry_on_failure: {{enabled: false}}
    sending_queue: {{num_consumers: 1}}
service:
  telemetry:
    metrics: {{level: none}}
  pipelines:
    traces:
      receivers: [shm]
      processors: [batch{semconv}]
      exporters: [nullexp]
"""


def run_sidecar(corpus: Corpus, n: int, registry: str, with_semconv: bool, encode: bool, shm_dir: str):
    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.factories import Registry
    from otelplug.sidecar.service import Service

    reg = Registry.default()
    reg.add(null_exporter_factory())
    channel = "semb" + uuid.uuid4().hex[:10]
    text = CONFIG.format(channel=channel, registry=registry, encode=str(encode).lower(),
                         semconv=", semconv" if with_semconv else "")
    svc = Service(load(None, reg, text=text))
    exporter = next(iter(svc.exporters.values()))
    exporter.target = n
    proc_cpu = [0.0]
    if with_semconv:
        proc = next(p for p in svc.processors if type(p).__name__ == "SemconvProcessor")
        inner = proc.process

        def timed(records):
            t0 = time.thread_time()
            try:
                return inner(records)
            finally:
                proc_cpu[0] += time.thread_time() - t0
        proc.process = timed
    svc.start()
    go = mp.get_context("fork").Event()
    child = mp.get_context("fork").Process(target=_produce,
                                           args=(channel, corpus.payloads, corpus.defs, n, go, shm_dir))
    child.start()
    time.sleep(0.3)                      # the receiver discovers the ring
    c0, w0 = time.process_time(), time.perf_counter()
    go.set()
    if not exporter.done.wait(300):
        raise SystemExit(f"only {exporter.spans} of {n} spans arrived")
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    child.join()
    svc.shutdown()
    checked_attrs = int(np.resize(corpus.attrs, n).sum())
    return {"cpu_us": cpu / n * 1e6, "wall_rate": n / wall, "proc_cpu": proc_cpu[0],
            "attrs": checked_attrs}


def run_direct(corpus: Corpus, n: int, registry: str, encode: bool, chunk: int = 4, signal: str = "traces"):
    """Both pipelines (without, with semconv) built up front and fed
    alternately, ``chunk`` batches at a time; CPU per span = the median over
    the chunks of each (a burst of load from other jobs on the machine hits
    a chunk or two, not one whole side of the comparison)."""
    from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
    from otelplug.sidecar.config.decode import decode
    from otelplug.sidecar.consumer import Consumer
    from otelplug.sidecar.exporters.otlp import payload_for
    from otelplug.sidecar.processors import semconv
    from otelplug.sidecar.telemetry import Telemetry

    class Sink(Consumer):
        def consume(self, records):
            if encode:
                payload_for(records)

    st = CreateSettings(ComponentID("semconv"), Kind.PROCESSOR, signal, Telemetry())
    pipes = {False: Sink(),
             True: semconv.factory.create(st, decode(semconv.SemconvConfig, {"registry": registry}), Sink())}
    size = 2048
    sets = [record_set([corpus.payloads[(i + j) % len(corpus.payloads)] for j in range(size)], corpus.defs, signal)
            for i in range(0, len(corpus.payloads), size)]
    for w in (False, True):            # first sight of every shape: not part of the steady state
        for s in sets:
            pipes[w].consume(s)
    per_chunk = {False: [], True: []}
    b = 0
    for _ in range(max(1, n // (size * chunk))):
        for w in (False, True):
            c0 = time.process_time()
            for k in range(chunk):
                pipes[w].consume(sets[(b + k) % len(sets)])
            per_chunk[w].append((time.process_time() - c0) / (chunk * size) * 1e6)
        b += chunk
    return {w: {"cpu_us": statistics.median(v)} for w, v in per_chunk.items()}


# ------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", default=str(DEFAULT_REGISTRY))
    ap.add_argument("--spans", type=int, default=200_000, help="spans per sidecar run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=400, help="instrumented request rounds (corpus size)")
    ap.add_argument("--no-encode", action="store_true", help="null exporter does not serialise OTLP")
    args = ap.parse_args(argv)
    if not Path(args.registry).exists():
        raise SystemExit(f"registry not found: {args.registry}")
    encode = not args.no_encode
    print(f"python {platform.python_version()} {platform.machine()}, codec {codec.default_impl().name}, "
          f"cpus {os.cpu_count()}")
    t0 = time.perf_counter()
    spans = real_spans(args.rounds)
    corpus = encode_corpus(spans)
    scopes = sorted({s.instrumentation_scope.name for s in spans})
    print(f"corpus: {len(corpus.payloads)} spans from {', '.join(scopes)}; "
          f"{corpus.attrs.mean():.1f} attributes/span; {time.perf_counter() - t0:.1f} s to build")
    t0 = time.perf_counter()
    from otelplug.sidecar.semconvcheck.config import registry_for
    reg = registry_for(args.registry)
    print(f"registry: {args.registry}: {len(reg.groups)} groups, {len(reg.attributes)} attributes, "
          f"resolved in {time.perf_counter() - t0:.2f} s (once, at config load)")

    shm_dir = tempfile.mkdtemp(prefix="otelplug-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.environ["OTELPLUG_SHM_DIR"] = shm_dir
    results = {(m, w): [] for m in ("sidecar", "direct") for w in (False, True)}
    try:
        for r in range(args.repeats):
            for w in (False, True):
                results[("sidecar", w)].append(run_sidecar(corpus, args.spans, args.registry, w, encode, shm_dir))
            direct = run_direct(corpus, args.spans, args.registry, encode)
            for w in (False, True):
                results[("direct", w)].append(direct[w])
            print(f"  repeat {r + 1}/{args.repeats}: sidecar {results[('sidecar', False)][-1]['cpu_us']:.2f} -> "
                  f"{results[('sidecar', True)][-1]['cpu_us']:.2f} us/span, direct "
                  f"{results[('direct', False)][-1]['cpu_us']:.2f} -> {results[('direct', True)][-1]['cpu_us']:.2f}")
    finally:
        import shutil
        shutil.rmtree(shm_dir, ignore_errors=True)

    def med(m, w, k):
        return statistics.median(x[k] for x in results[(m, w)])

    exporter = "OTLP-encoding null exporter" if encode else "null exporter (no encoding)"
    print()
    print(f"sidecar: shm -> batch -> [semconv] -> {exporter}, {args.spans} spans/run, "
          f"median of {args.repeats}")
    print(f"  {'':28}{'CPU us/span':>12}{'spans/s (wall)':>16}")
    for w in (False, True):
        print(f"  {'with semconv' if w else 'without semconv':28}{med('sidecar', w, 'cpu_us'):>12.2f}"
              f"{med('sidecar', w, 'wall_rate'):>16,.0f}")
    ratio = med("sidecar", True, "cpu_us") / med("sidecar", False, "cpu_us")
    pc = statistics.median(x["proc_cpu"] for x in results[("sidecar", True)])
    attrs = results[("sidecar", True)][0]["attrs"]
    print(f"  CPU per span with / without: {ratio:.3f}  (+{(ratio - 1) * 100:.1f}%; target <= +25%)")
    proc_us = pc / args.spans * 1e6
    print(f"  semconv processor: {proc_us:.2f} us/span, "
          f"{attrs / pc:,.0f} attributes checked/s ({args.spans / pc:,.0f} spans/s)")
    # the processor's own CPU against the sidecar without it: the same
    # ratio, less exposed to the noise in the sidecar's total CPU
    print(f"  processor CPU / sidecar CPU without: +{proc_us / med('sidecar', False, 'cpu_us') * 100:.1f}%")
    print()
    print(f"direct: RecordSets of 2048 -> [semconv] -> {exporter.replace('null exporter', 'encode')}")
    for w in (False, True):
        print(f"  {'with semconv' if w else 'without semconv':28}{med('direct', w, 'cpu_us'):>12.2f} us/span")
    dr = med("direct", True, "cpu_us") / med("direct", False, "cpu_us")
    print(f"  CPU per span with / without: {dr:.3f}  (+{(dr - 1) * 100:.1f}%)")


if __name__ == "__main__":
    main()
