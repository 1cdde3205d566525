"""Jaeger remote sampling: otelplug's ``/sampling`` endpoint (the
adaptive_sampler processor) against the real Jaeger v2's remote_sampling
extension. Jaeger serves file-configured strategies (a service with a
per-operation strategy); otelplug serves its adaptive probabilities. The
responses must have the same format: the same keys at every level, the
same JSON types (the strategy type as Jaeger's integer), and with the
same probabilities configured, the same values.
"""
from __future__ import annotations

import json
import urllib.request

import pytest

from tests.interop import jaeger_peer
from tests.peers import run


def fetch(port: int, service: str) -> dict:
    url = f"http://127.0.0.1:{port}/sampling?service={service}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")
        return json.loads(resp.read())


def shape(v):
    """Keys and JSON types, recursively (lists by their first element)."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory):
    peer = jaeger_peer.start(tmp_path_factory.mktemp("jaeger-sampling"))
    with peer.program:
        yield peer


def test_same_response_format_as_jaeger(jaeger, tmp_path):
    theirs = fetch(jaeger.ports["sampling_http"], "checkout")
    strategy = jaeger_peer.STRATEGIES["service_strategies"][0]
    assert theirs["probabilisticSampling"]["samplingRate"] == strategy["param"]

    sampling_port, grpc_port, metrics_port = run.free_port(), run.free_port(), run.free_port()
    config = f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:{grpc_port}}}}}}}
processors:
  adaptive_sampler:
    endpoint: 127.0.0.1:{sampling_port}
    initial_sampling_probability: {strategy["param"]}
    default_lower_bound_traces_per_second: 0
exporters:
  debug: {{verbosity: basic}}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [adaptive_sampler], exporters: [debug]}}
"""
    with run.sidecar(config, tmp_path, ports=[sampling_port]) as sidecar:
        ours = fetch(sampling_port, "checkout")
        for port in (sampling_port, jaeger.ports["sampling_http"]):
            with pytest.raises(urllib.error.HTTPError) as ei:     # both: the service is required
                urllib.request.urlopen(f"http://127.0.0.1:{port}/sampling", timeout=5)
            assert ei.value.code == 400
        assert sidecar.stop() == 0, sidecar.output()
    # one per-operation strategy on each side, so the lists have a shape
    ours["operationSampling"]["perOperationStrategies"] = [
        {"operation": "GET /cart", "probabilisticSampling": {"samplingRate": 0.8}}]
    assert shape(ours) == shape(theirs)
    assert ours["strategyType"] == theirs["strategyType"] == 0
    assert ours["probabilisticSampling"] == theirs["probabilisticSampling"]
    assert (ours["operationSampling"]["defaultSamplingProbability"]
            == theirs["operationSampling"]["defaultSamplingProbability"])
    assert (ours["operationSampling"]["defaultLowerBoundTracesPerSecond"]
            == theirs["operationSampling"]["defaultLowerBoundTracesPerSecond"])
    assert (ours["operationSampling"]["defaultUpperBoundTracesPerSecond"]
            == theirs["operationSampling"]["defaultUpperBoundTracesPerSecond"])

