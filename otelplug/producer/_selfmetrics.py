"""The SDK's own processor metrics, for otelplug's processors.

SDK 1.45 counts ``otel.sdk.processor.span.processed`` (and ``.log.``) per
processor when ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``, with
``error.type`` set on dropped items.  otelplug reports the same instrument
with ``otel.component.type`` = ``otelplug_shm_span_processor`` /
``otelplug_shm_log_processor``; drops carry ``error.type`` ``queue_full``
(ring full), ``too_large`` (record above the ring's max_record),
``encode_error`` or ``already_shutdown``.

The instrument factory lives in the semconv package's incubating module;
if it moves, this degrades to no metrics (the processors' ``stats()`` and the
ring counters remain).
"""
from __future__ import annotations


class _NoMetrics:
    enabled = False

    def finish_items(self, count: int) -> None:
        pass

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        pass


_instances: dict[str, int] = {}


class _ProcessorMetrics:
    """``otel.sdk.processor.{span,log}.processed`` as the SDK counts it, with
    our own error types."""

    enabled = True

    def __init__(self, signal: str, component_type: str, meter_provider):
        from opentelemetry.semconv._incubating.metrics import otel_metrics
        create = (otel_metrics.create_otel_sdk_processor_span_processed if signal == "traces"
                  else otel_metrics.create_otel_sdk_processor_log_processed)
        n = _instances.get(component_type, 0)
        _instances[component_type] = n + 1
        self._processed = create(meter_provider.get_meter("otelplug"))
        self._attrs = {"otel.component.type": component_type,
                       "otel.component.name": f"{component_type}/{n}"}
        self._error_attrs: dict[str, dict] = {}

    def finish_items(self, count: int) -> None:
        self._processed.add(count, self._attrs)

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        attrs = self._error_attrs.get(error_type)
        if attrs is None:
            attrs = self._error_attrs[error_type] = {**self._attrs, "error.type": error_type}
        self._processed.add(count, attrs)


def processor_metrics(signal: str, component_type: str, meter_provider=None):
    """The self-metrics of one processor, or a no-op unless the SDK's
    internal metrics are enabled."""
    try:
        from opentelemetry.metrics import get_meter_provider
        from opentelemetry.sdk.environment_variables import (
            OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED)
        from opentelemetry.sdk.environment_variables._internal import (
            parse_boolean_environment_variable)
        if not parse_boolean_environment_variable(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED):
            return _NoMetrics()
        return _ProcessorMetrics(signal, component_type, meter_provider or get_meter_provider())
    except ImportError:  # an SDK without internal metrics
        return _NoMetrics()
