"""Traces spread over 3 producer processes are kept or dropped whole.

Three real processes write spans through ``otelplug.ShmSpanProcessor``
into their own rings; every trace has one span in each process (the
remote-parent case: a request crossing three services), and some traces
have an error in one process only.  An in-process sidecar Service drains
the rings through a sampler into a capturing exporter.  For each sampler
the kept set of spans must be made of whole traces: all three spans or
none."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

import numpy as np
import pytest

from otelplug.sidecar.component import Factory, Kind
from otelplug.sidecar.config.model import load
from otelplug.sidecar.consumer import Consumer
from otelplug.sidecar.factories import Registry
from otelplug.sidecar.service import Service

from .test_sampling_common import decoded

N_TRACES = 600
PRODUCER = textwrap.dedent("""
    import sys
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import (NonRecordingSpan, SpanContext, Status, StatusCode,
                                     TraceFlags, set_span_in_context)
    from otelplug import ShmSpanProcessor
    channel, index, ids_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    tp = TracerProvider(resource=Resource.create({"service.name": f"svc{index}"}))
    proc = ShmSpanProcessor(channel)
    tp.add_span_processor(proc)
    tracer = tp.get_tracer("multi")
    for line in open(ids_file):
        tid, err_in = line.split()
        parent = SpanContext(int(tid, 16), 0x1000 + index, is_remote=True,
                             trace_flags=TraceFlags(1))
        ctx = set_span_in_context(NonRecordingSpan(parent))
        with tracer.start_as_current_span(f"hop{index}", context=ctx) as s:
            if int(err_in) == index:
                s.set_status(Status(StatusCode.ERROR))
    tp.force_flush()
    print("done", proc.written, proc.dropped, flush=True)
""")

_GOT: list = []


@dataclass
class _CaptureConfig:
    pass


class _Capture(Consumer):
    def __init__(self, settings, config):
        pass

    def consume(self, records):
        _GOT.append(records.detach())
        records.settle()

    def start(self, host):
        pass

    def shutdown(self):
        pass


SAMPLERS = {
    "probabilistic": "probabilistic_sampler: {sampling_percentage: 30, mode: proportional}",
    "adaptive": "adaptive_sampler: {target_samples_per_second: 50, initial_sampling_probability: 0.3, "
                "endpoint: ''}",
    "tail": "tail_sampling: {decision_wait: 30s, policies: [{name: err, type: status_code, "
            "status_code: {status_codes: [ERROR]}}, {name: p, type: probabilistic, "
            "probabilistic: {sampling_percentage: 20}}]}",
}


@pytest.mark.parametrize("kind", list(SAMPLERS))
def test_traces_over_three_processes_kept_or_dropped_whole(kind, tmp_path):
    rng = np.random.default_rng(42)
    ids = [f"{int.from_bytes(rng.bytes(16), 'big'):032x}" for _ in range(N_TRACES)]
    errs = {t: (i % 3 if i % 10 == 0 else -1) for i, t in enumerate(ids)}
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("".join(f"{t} {errs[t]}\n" for t in ids))
    channels = [f"samp{kind}{i}" for i in range(3)]
    reg = Registry.default()
    reg.add(Factory("capture", Kind.EXPORTER, _CaptureConfig, _Capture))
    _GOT.clear()
    name = SAMPLERS[kind].split(":")[0]
    svc = Service(load("s.yaml", reg, text=f"""
receivers: {{shm: {{channels: [{', '.join(channels)}]}}}}
processors: {{{SAMPLERS[kind]}}}
exporters: {{capture: {{}}}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [{name}], exporters: [capture]}}
"""))
    svc.start()
    try:
        procs = [subprocess.Popen([sys.executable, "-c", PRODUCER, ch, str(i), str(ids_file)],
                                  stdout=subprocess.PIPE, text=True) for i, ch in enumerate(channels)]
        for p in procs:
            out, _ = p.communicate(timeout=60)
            assert p.returncode == 0 and out.split()[0] == "done" and out.split()[2] == "0", out
        # wait until the sampler has taken in every span (no fixed sleep);
        # tail sampling decides what is still pending at shutdown
        incoming = svc.telemetry.get("processor_incoming_items")
        deadline = time.monotonic() + 60
        while incoming.value(processor=name, otel_signal="traces") < 3 * N_TRACES:
            assert time.monotonic() < deadline, incoming.samples()
            time.sleep(0.05)
    finally:
        svc.shutdown()
    spans = [s for r in _GOT for s in decoded(r)]
    by_trace: dict[int, set] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, set()).add(s.name)
    assert by_trace, "nothing kept"
    if kind == "adaptive":
        # priority traces are kept from the span that shows the error on;
        # their spans that reached the sampler earlier were decided by
        # probability (the documented limitation: adaptive holds no spans)
        err_traces = {int(t, 16) for t in ids if errs[t] >= 0}
        kept_errors = {s.trace_id for s in spans if s.status_code == 2}
        assert kept_errors == err_traces
        by_trace = {t: v for t, v in by_trace.items() if t not in err_traces}
        spans = [s for s in spans if s.trace_id not in err_traces]
    assert all(v == {"hop0", "hop1", "hop2"} for v in by_trace.values()), \
        [v for v in by_trace.values() if len(v) != 3][:5]
    assert len(spans) == 3 * len(by_trace)
    kept = {f"{t:032x}" for t in by_trace}
    assert 0.1 * N_TRACES < len(kept) < 0.6 * N_TRACES
    if kind == "tail":       # every trace with an error somewhere was kept
        assert {t for t in ids if errs[t] >= 0} <= kept
