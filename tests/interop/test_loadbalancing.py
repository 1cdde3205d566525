"""otelplug sidecars behind the real Collector's loadbalancing exporter.

The Collector (otlp receiver -> loadbalancing exporter, routing by trace
id, static resolver) spreads traces over two ``otelplug run`` backends
(otlp receiver -> file exporter). Every span must arrive exactly once, the
spans of a trace all at the same backend, and both backends get traffic.
"""
from __future__ import annotations

from collections import Counter

from tests.interop import otlp_compare as cmp
from tests.interop.traffic import make_requests, send
from tests.peers import run


def backend(tmp_path, name: str):
    port, metrics_port = run.free_port(), run.free_port()
    config = f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:{port}}}}}}}
exporters:
  file: {{path: {tmp_path / (name + '.json')}}}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
"""
    return port, run.sidecar(config, tmp_path, ports=[port], name=name)


def test_traces_stay_whole_per_backend(tmp_path):
    requests = make_requests(n_traces=200)
    want = cmp.flatten("traces", [cmp.REQUESTS["traces"].FromString(r) for r in requests])
    port_a, a = backend(tmp_path, "a")
    port_b, b = backend(tmp_path, "b")
    col_port = run.free_port()
    config = f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:{col_port}}}}}}}
exporters:
  loadbalancing:
    routing_key: traceID
    protocol:
      otlp: {{tls: {{insecure: true}}}}
    resolver:
      static: {{hostnames: ["127.0.0.1:{port_a}", "127.0.0.1:{port_b}"]}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [loadbalancing]}}
"""
    with a, b, run.collector(config, tmp_path, ports=[col_port]) as collector:
        send(col_port, requests)

        def arrived():
            got = {n: cmp.flatten("traces", cmp.read_json_lines(tmp_path / f"{n}.json", "traces"))
                   for n in ("a", "b")}
            return got if sum(len(v) for v in got.values()) >= len(want) else None

        got = run.wait_for(arrived, 60, lambda: f"{len(want)} spans at the backends\n"
                           f"{collector.output()}\n{a.output()}\n{b.output()}")
        assert a.stop() == 0 and b.stop() == 0
    cmp.assert_same("traces", got["a"] + got["b"], want)
    traces = {n: Counter(i["span"]["trace_id"] for i in items) for n, items in got.items()}
    assert traces["a"] and traces["b"], "one backend got nothing"
    assert not set(traces["a"]) & set(traces["b"]), "a trace was split between backends"
