"""Sampling in the sidecar (issue 6): CPU per span of each sampler, beside
the sidecar's own per-span cost measured in the same run, and the memory
tail sampling holds per buffered trace.

Batches
    Real SDK spans (``opentelemetry-sdk``): traces of 5 nested spans (a
    server span, two client spans, two internal), HTTP/DB attributes, 2% of
    traces with an error span, 3 services; encoded once with the codec into
    records, then for every batch the trace ids are replaced by fresh random
    ones (numpy patch of the records' first 16 bytes), so each batch is new
    traffic.  ``--batch`` spans per batch (the shm receiver's typical drain
    with a batch processor in front: 8192).

Measured, ``--repeats`` rounds interleaved, median of the per-batch times:

baseline    ``decode_span_columns`` + the otlp exporter's payload encoding
            (``payload_for``: the Cython encoder writing the export request
            from the records): what the sidecar spends per span on the way
            out anyway, without a sampler
probabilistic_sampler  proportional 10%, and hash_seed 10% (kept spans get
            ``ot=th``/``rv`` spliced into their tracestate)
adaptive_sampler  target 1,000 spans/s at 100k offered spans/s (clock
            advanced by batch/100k s per batch), error priority on
tail_sampling  status_code ERROR + probabilistic 10% policies; one batch's
            intake (copy into per-trace storage) plus the decision round
            that emits it: decision_wait passed with an injected clock
memory      tail_sampling's own accounting and tracemalloc, per buffered
            trace, with 20,000 traces buffered

Command::

    python bench/sampling.py --batch 8192 --repeats 15
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from otelplug import codec  # noqa: E402
from otelplug.sidecar.exporters.otlp import payload_for
from otelplug.sidecar.component import ComponentID, CreateSettings
from otelplug.sidecar.config.decode import decode
from otelplug.sidecar.consumer import Consumer
from otelplug.codec.recordset import RecordSet
from otelplug.sidecar.processors import adaptive_sampler, probabilistic_sampler, tail_sampling
from otelplug.sidecar.telemetry import Telemetry

SPANS_PER_TRACE = 5


def sdk_records(n_spans: int) -> RecordSet:
    mem = InMemorySpanExporter()
    providers = []
    for svc in ("frontend", "cart", "payments"):
        tp = TracerProvider(resource=Resource.create({"service.name": svc,
                                                      "deployment.environment.name": "prod"}))
        tp.add_span_processor(SimpleSpanProcessor(mem))
        providers.append(tp)
    for i in range(n_spans // SPANS_PER_TRACE):
        tr = providers[i % 3].get_tracer("bench", "1.0")
        with tr.start_as_current_span(f"GET /api/items/{{id}}#{i % 7}", kind=SpanKind.SERVER,
                                      attributes={"http.request.method": "GET",
                                                  "url.path": f"/api/items/{i}",
                                                  "http.route": "/api/items/{id}",
                                                  "http.response.status_code": 200,
                                                  "server.address": "api.local"}):
            for j in range(2):
                with tr.start_as_current_span("SELECT items", kind=SpanKind.CLIENT,
                                              attributes={"db.system": "postgresql",
                                                          "db.query.text": "SELECT * FROM items WHERE id=$1",
                                                          "server.port": 5432}) as s:
                    if i % 50 == 0 and j == 1:
                        s.set_status(Status(StatusCode.ERROR, "boom"))
                with tr.start_as_current_span("render", attributes={"item.count": j}):
                    pass
    parts, defs = [], {}
    for s in mem.get_finished_spans():
        rp, sp = codec.encode_resource(s.resource), codec.encode_scope(s.instrumentation_scope)
        rk, sk = codec.definition_key(rp), codec.definition_key(sp)
        defs[rk], defs[sk] = rp, sp
        parts.append(codec.encode_span(s, rk, sk))
    return RecordSet.from_parts("traces", parts, defs)


class Fresh:
    """The template batch with new random trace ids each time (spans of a
    trace keep sharing one)."""

    def __init__(self, template: RecordSet, seed=1):
        self.t = template
        self.buf = np.frombuffer(template.buf, np.uint8).copy()
        cols = codec.decode_span_columns(template)
        _, self.group = np.unique(cols.trace_id.view("V16").ravel(), return_inverse=True)
        self.idx = template.offsets.astype(np.int64)[:, None] + np.arange(16)
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> RecordSet:
        ids = self.rng.integers(0, 256, size=(self.group.max() + 1, 16), dtype=np.uint8)
        self.buf[self.idx] = ids[self.group]
        t = self.t
        return RecordSet("traces", self.buf.tobytes(), t.offsets, t.lengths, t.defs)


class Null(Consumer):
    def __init__(self):
        self.items = 0

    def consume(self, records):
        self.items += records.items
        records.settle()


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def make(factory, cfg, clock=None):
    st = CreateSettings(ComponentID(factory.type), factory.kind, "traces", Telemetry(),
                        extra={"clock": clock} if clock else {})
    return factory.create(st, decode(factory.config, cfg), Null())


def measure(args):
    template = sdk_records(args.batch)
    n = len(template)
    fresh = Fresh(template)
    clock_a, clock_t = Clock(), Clock()
    samplers = {
        "probabilistic proportional 10%": make(probabilistic_sampler.factory,
                                               {"sampling_percentage": 10, "mode": "proportional"}),
        "probabilistic hash_seed 10%": make(probabilistic_sampler.factory,
                                            {"sampling_percentage": 10, "mode": "hash_seed"}),
        "adaptive (1k/s of 100k/s)": make(adaptive_sampler.factory,
                                          {"target_samples_per_second": 1000, "endpoint": "",
                                           "calculation_interval": "1s",
                                           "percentage_increase_cap": 2.0}, clock_a),
        "tail_sampling (2 policies)": make(tail_sampling.factory, {
            "decision_wait": "5s", "num_traces": 100000,
            "policies": [{"name": "err", "type": "status_code",
                          "status_code": {"status_codes": ["ERROR"]}},
                         {"name": "p", "type": "probabilistic",
                          "probabilistic": {"sampling_percentage": 10}}]}, clock_t),
    }
    times = {k: [] for k in ["baseline (columns + OTLP encode)"] + list(samplers)}
    # warm up the adaptive sampler to its steady probability
    for _ in range(30):
        samplers["adaptive (1k/s of 100k/s)"].consume(fresh())
        clock_a.t += n / 100_000
    for _ in range(args.repeats):
        batch = fresh()
        t0 = time.perf_counter()
        codec.decode_span_columns(batch)
        payload_for(batch)
        times["baseline (columns + OTLP encode)"].append(time.perf_counter() - t0)
        for name, s in samplers.items():
            batch = fresh()
            t0 = time.perf_counter()
            s.consume(batch)
            if s is samplers["tail_sampling (2 policies)"]:
                clock_t.t += 6
                s.tick()
            times[name].append(time.perf_counter() - t0)
            if name.startswith("adaptive"):
                clock_a.t += n / 100_000
    kept = {k: s.next.items for k, s in samplers.items()}
    print(f"batch: {n} spans ({n // SPANS_PER_TRACE} traces), {len(template.buf) / n:.0f} bytes/span; "
          f"median of {args.repeats}")
    print(f"{'':36s} {'us/span':>8s} {'x baseline':>10s}")
    base = statistics.median(times["baseline (columns + OTLP encode)"]) / n * 1e6
    for k, v in times.items():
        us = statistics.median(v) / n * 1e6
        extra = f"  kept {kept[k] / (args.repeats * n + (30 * n if k.startswith('adaptive') else 0)):.1%}" \
            if k in kept else ""
        print(f"{k:36s} {us:8.2f} {us / base:10.2f}{extra}")
    splice_cost(template, fresh)
    return template


def splice_cost(template, fresh):
    """The tracestate rewrite of kept spans: the byte splice the samplers
    use, against a full decode/re-encode (``rewrite.rewrite``)."""
    from otelplug.sidecar.sampling import records as rec
    from otelplug.sidecar.rewrite import rewrite
    batch = fresh()
    n = len(batch)
    enc = [rec.encode_nstr("ot=th:e666")] * n
    t = []
    for _ in range(5):
        t0 = time.perf_counter()
        rec.splice_tracestates(batch, rec.tracestate_info(batch), enc)
        t.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    rewrite(batch, lambda sp: setattr(sp, "trace_state", "ot=th:e666"))
    full = time.perf_counter() - t0
    print(f"tracestate update per kept span: splice {statistics.median(t) / n * 1e6:.2f} us, "
          f"decode + re-encode {full / n * 1e6:.2f} us")


def memory(template, traces=20000):
    clock = Clock()
    s = make(tail_sampling.factory, {"decision_wait": "30s", "num_traces": traces * 2,
                                     "policies": [{"name": "a", "type": "always_sample"}]}, clock)
    fresh = Fresh(template, seed=9)
    s.consume(fresh())                              # allocator warm-up
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    buffered = len(s._pending)
    while len(s._pending) < traces:
        s.consume(fresh())
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    added = len(s._pending) - buffered
    rec = len(template.buf) / len(template) * SPANS_PER_TRACE
    print(f"tail_sampling memory: {len(s._pending)} traces buffered of {SPANS_PER_TRACE} spans "
          f"({rec:.0f} record bytes/trace): accounted {s.memory / len(s._pending):.0f} B/trace, "
          f"tracemalloc {held / added:.0f} B/trace")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args()
    memory(measure(a))
