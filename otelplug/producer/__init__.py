"""OpenTelemetry SDK adapters writing into otelplug's shared-memory rings.

- ``ShmSpanProcessor``: a SpanProcessor (use instead of BatchSpanProcessor).
- ``ShmLogRecordProcessor``: a LogRecordProcessor for logs and events.
- ``ShmMetricExporter``: a push MetricExporter for PeriodicExportingMetricReader.
- ``ShmSpanExporter`` / ``ShmLogExporter``: exporters for the
  ``OTEL_*_EXPORTER=otelplug`` entry points (zero code).
- ``OtelplugDistro`` / ``OtelplugConfigurator``: ``opentelemetry-instrument``
  integration that installs the processors directly.
"""
from __future__ import annotations

# Registers concurrent.futures' fork handler (it holds a pool lock from just
# before a fork until just after) ahead of any TracerProvider's: the SDK's
# provider fork handler submits to a thread pool in the child, so when it is
# registered first, the forked child (a gunicorn worker) deadlocks on that
# lock.  Importing otelplug before creating the provider puts them in order.
import concurrent.futures.thread  # noqa: F401,E402

_EXPORTS = {
    "ShmSpanProcessor": "span_processor",
    "ShmLogRecordProcessor": "log_processor",
    "ShmMetricExporter": "metric_exporter",
    "ShmSpanExporter": "exporters",
    "ShmLogExporter": "exporters",
    "OtelplugDistro": "distro",
    "OtelplugConfigurator": "distro",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
