"""Building blocks for sidecar tests: real SDK spans turned into records,
a consumer that captures what reaches it, component construction."""
from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelplug import codec
from otelplug.otlp import encode
from otelplug.sidecar.ack import Ack
from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
from otelplug.sidecar.config.decode import decode
from otelplug.sidecar.consumer import Consumer
from otelplug.codec.recordset import RecordSet
from otelplug.sidecar.telemetry import Telemetry


def sdk_spans(n=10, service="svc", attrs=None):
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tr = tp.get_tracer("test.scope", "1.2.3")
    for i in range(n):
        with tr.start_as_current_span(f"op{i % 3}", attributes={"i": i, "user.email": f"u{i}@x",
                                                                  **(attrs or {})}):
            pass
    return list(mem.get_finished_spans())


def records_from_spans(spans, acks=()) -> RecordSet:
    defs, parts = {}, []
    for s in spans:
        rp, sp = codec.encode_resource(s.resource), codec.encode_scope(s.instrumentation_scope)
        rk, sk = codec.definition_key(rp), codec.definition_key(sp)
        defs[rk], defs[sk] = rp, sp
        parts.append(codec.encode_span(s, rk, sk))
    return RecordSet.from_parts("traces", parts, defs, acks)


def otlp_spans(records):
    """Decoded OTLP spans (flattened) of a RecordSet, via the OTLP encoder."""
    req = encode.traces_request(records)
    return [(rs.resource, s) for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]


class Capture(Consumer):
    def __init__(self, settle=True):
        self.got: list[RecordSet] = []
        self.settle = settle

    def consume(self, records):
        self.got.append(records)
        if self.settle:
            records.settle()

    @property
    def items(self):
        return sum(r.items for r in self.got)


def make(factory, config_data=None, next_consumer=None, signal="traces", name="", telemetry=None):
    cfg = decode(factory.config, config_data or {})
    st = CreateSettings(ComponentID(factory.type, name), factory.kind, signal, telemetry or Telemetry())
    if factory.kind in (Kind.PROCESSOR, Kind.CONNECTOR):
        return factory.create(st, cfg, next_consumer)
    return factory.create(st, cfg)


def counting_ack():
    settled = []
    return Ack(lambda a: settled.append(a.failed)), settled


#: a one-attribute semantic-convention registry, for components that need one
APP_REGISTRY = """
groups:
  - id: registry.app
    type: attribute_group
    brief: App.
    attributes:
      - id: app.mode
        type: string
        brief: Mode.
        stability: stable
"""


def app_registry(directory) -> str:
    """Writes APP_REGISTRY as a registry folder under ``directory``; its path."""
    d = directory / "registry"
    d.mkdir()
    (d / "app.yaml").write_text(APP_REGISTRY)
    return str(d)
