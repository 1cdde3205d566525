"""The real Collector's loadbalancing exporter and otelplug's, one after
the other in front of the same three backend processes with the same
traffic: every trace goes to the same backend with both (the same ring),
and arrives whole."""
from __future__ import annotations

from collections import defaultdict

from tests.interop.traffic import make_requests, send
from tests.peers import run
from tests.traces.lb_backends import SinkProcess, spans_at

N_TRACES, SPANS_PER_TRACE = 150, 3


def placement(sinks, before):
    out = defaultdict(set)
    for s in sinks:
        for tid, n in s.snapshot().items():
            if n > before[s.endpoint].get(tid, 0):
                out[tid].add(s.endpoint)
    return out


def lb_config(receiver_port, sinks, extra=""):
    hostnames = ", ".join(f'"{s.endpoint}"' for s in sinks)
    return f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:{receiver_port}}}}}}}
exporters:
  loadbalancing:
    routing_key: traceID
    protocol:
      otlp: {{tls: {{insecure: true}}}}
    resolver:
      static: {{hostnames: [{hostnames}]}}
service:
  {extra}
  pipelines:
    traces: {{receivers: [otlp], exporters: [loadbalancing]}}
"""


def test_same_backend_per_trace_as_the_collector(tmp_path):
    run.require_collector()
    requests = make_requests(n_traces=N_TRACES)
    total = N_TRACES * SPANS_PER_TRACE
    sinks = [SinkProcess() for _ in range(3)]
    try:
        placed = {}
        for k, who in enumerate(("collector", "otelplug")):
            port = run.free_port()
            before = {s.endpoint: s.snapshot() for s in sinks}
            if who == "collector":
                prog = run.collector(lb_config(port, sinks, "telemetry: {metrics: {level: none}}"),
                                     tmp_path, ports=[port])
            else:
                metrics_port = run.free_port()
                prog = run.sidecar(lb_config(
                    port, sinks, f"telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}"),
                    tmp_path, ports=[port])
            with prog:
                send(port, requests)
                run.wait_for(lambda: spans_at(sinks) >= total * (k + 1), 60,
                             lambda: f"{total} spans from {who}\n{prog.output()}")
            placed[who] = placement(sinks, before)
        assert len(placed["collector"]) == N_TRACES
        for tid, where in placed["collector"].items():
            assert len(where) == 1, f"the Collector split trace {tid}"
            assert placed["otelplug"][tid] == where, tid
        assert spans_at(sinks) == 2 * total
        assert len({next(iter(w)) for w in placed["otelplug"].values()}) == 3
    finally:
        for s in sinks:
            s.close()
