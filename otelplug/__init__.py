"""otelplug: an OpenTelemetry Collector-compatible host agent whose producers
hand telemetry to a sidecar through shared-memory rings.

Layout:
  otelplug.ring      the shared-memory ring (producer and consumer halves)
  otelplug.producer  OpenTelemetry SDK processors writing into the ring
  otelplug.sidecar   receivers / processors / exporters / connectors / extensions
  otelplug.semconv   Weaver-style semantic-convention registries and checks
  otelplug.cli       the ``otelplug`` command
"""
__version__ = "0.1.0"

# Lazy exports: ``import otelplug`` stays light (no SDK, no numpy) until one
# of these is used.
_LAZY = {
    "ShmSpanProcessor": "otelplug.producer.span_processor",
    "ShmLogRecordProcessor": "otelplug.producer.log_processor",
    "ShmMetricExporter": "otelplug.producer.metric_exporter",
}


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'otelplug' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
