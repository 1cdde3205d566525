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
