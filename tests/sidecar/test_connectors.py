"""What the service gives connectors: a typed router of the pipelines they
feed (not the service itself), instances shared per connector id, and
connector-specific pipeline checks that fail in config validation."""
from __future__ import annotations

import pytest

from otelplug.sidecar.component import PipelineID
from otelplug.sidecar.config import ConfigErrors
from otelplug.sidecar.config.model import load
from otelplug.sidecar.consumer import PipelineRouter
from otelplug.sidecar.factories import Registry
from otelplug.sidecar.service import Service
from otelplug.sidecar.shared import SharedInstances

from .helpers import app_registry

ROUTER = """
receivers: {{shm: {{channels: [connectortest]}}}}
exporters: {{debug: {{}}}}
connectors:
  semconv_router:
    registry: {registry}
    pipelines: [{listed}]
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], exporters: [semconv_router]}}
    traces/ok: {{receivers: [semconv_router], exporters: [debug]}}
    logs/other: {{receivers: [semconv_router], exporters: [debug]}}
"""


@pytest.fixture
def registry(tmp_path) -> str:
    return app_registry(tmp_path)


def build(text: str) -> Service:
    return Service(load("c.yaml", Registry.default(), text=text))


def test_connector_instances_share_one_engine_per_service(registry):
    """The router's checker is one per connector id within a service (its
    SharedInstances), and never shared across services."""
    from otelplug.sidecar.component import ComponentID, CreateSettings
    from otelplug.sidecar.config.decode import decode
    from otelplug.sidecar.connectors import semconv_router
    from otelplug.sidecar.telemetry import Telemetry

    f = semconv_router.factory
    cfg = decode(f.config, {"registry": registry})
    tel = Telemetry()
    ours, theirs = SharedInstances(), SharedInstances()

    def router(signal, shared):
        st = CreateSettings(ComponentID("semconv_router"), f.kind, signal, tel, shared=shared)
        return f.create(st, cfg, None)

    traces, logs, elsewhere = router("traces", ours), router("logs", ours), router("traces", theirs)
    assert traces.engine is logs.engine
    assert elsewhere.engine is not traces.engine
    assert len(ours) == 1
    svc = build(ROUTER.format(registry=registry, listed="traces/ok"))
    engine = svc.connectors[("semconv_router", "traces")].engine
    assert svc.shared.get_or_create(("semconv_router", "semconv_router"), object) is engine


def test_connector_gets_a_router_of_the_pipelines_it_feeds():
    svc = build("""
receivers: {shm: {channels: [connectortest]}}
exporters: {debug: {}}
connectors: {forward: {}}
service:
  telemetry: {metrics: {level: none}}
  pipelines:
    traces: {receivers: [shm], exporters: [forward]}
    traces/a: {receivers: [forward], exporters: [debug]}
    traces/b: {receivers: [forward], exporters: [debug]}
    logs: {receivers: [shm], exporters: [debug]}
""")
    router = svc.connectors[("forward", "traces")].next
    assert isinstance(router, PipelineRouter)
    # the pipelines it feeds, in config order
    assert router.pipeline_ids() == [PipelineID("traces", "a"), PipelineID("traces", "b")]
    assert router.consumer([PipelineID("traces", "b")]).consumers == [
        svc.entries[PipelineID("traces", "b")]]
    assert router.consumer([]) is None


def test_router_pipeline_checks_fail_in_config_validation(registry):
    text = ROUTER.format(registry=registry, listed="logs/other, logs/missing")
    with pytest.raises(ConfigErrors) as ei:
        load("c.yaml", Registry.default(), text=text)      # no service built
    assert [str(e) for e in ei.value.errors] == [
        'connectors::semconv_router::pipelines::1: pipeline "logs/missing" does not receive from '
        '"semconv_router" (c.yaml:7)',
        "connectors::semconv_router::pipelines: no traces pipeline receives the items that are not "
        "routed: list them in pipelines (c.yaml:7)",
    ]


def test_shared_instances_create_once():
    shared, made = SharedInstances(), []

    def make():
        made.append(object())
        return made[-1]

    first = shared.get_or_create("k", make)
    assert shared.get_or_create("k", make) is first and len(made) == 1
    assert shared.get_or_create("j", make) is not first and len(made) == 2
