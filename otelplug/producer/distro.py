"""Zero-code setup with ``opentelemetry-instrument``.

``OtelplugConfigurator`` (entry point ``opentelemetry_configurator: otelplug``)
runs the SDK's standard auto-configuration, except that an ``otelplug``
trace or log exporter is installed as ``ShmSpanProcessor`` /
``ShmLogRecordProcessor`` directly rather than wrapped in a Batch*Processor
(no queue, no thread).  Other exporters keep the SDK's batch processors.
Metrics use ``ShmMetricExporter`` under the SDK's periodic reader.

``OtelplugDistro`` (``opentelemetry_distro: otelplug``) makes ``otelplug`` the
default exporter for all three signals (an explicit ``OTEL_*_EXPORTER``
still wins), but only when it is selected by name:

    OTEL_PYTHON_DISTRO=otelplug OTEL_PYTHON_CONFIGURATOR=otelplug \\
        opentelemetry-instrument python app.py

``opentelemetry-instrument`` without ``OTEL_PYTHON_DISTRO`` takes the first
distro it finds, which is otelplug's whenever it is the only one installed,
and which one among several depends on the install order.  So that
installing otelplug changes nothing by itself, and the outcome does not
depend on that order, an unselected OtelplugDistro does nothing: the SDK's
defaults apply (OTLP exporters), and ``OTEL_*_EXPORTER=otelplug`` still asks
for the rings signal by signal, under any distro.
"""
from __future__ import annotations

import os

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.instrumentation.environment_variables import OTEL_PYTHON_DISTRO
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .exporters import ShmLogExporter, ShmSpanExporter

#: the name of the entry point in pyproject.toml (opentelemetry_distro)
DISTRO_NAME = "otelplug"


def span_processor_for(exporter):
    """The SDK's ``export_span_processor`` hook: ring exporters become the
    ShmSpanProcessor they wrap, anything else gets the SDK's batching."""
    if isinstance(exporter, ShmSpanExporter):
        return exporter.processor
    return BatchSpanProcessor(exporter)


def log_processor_for(exporter):
    if isinstance(exporter, ShmLogExporter):
        return exporter.processor
    return BatchLogRecordProcessor(exporter)


class OtelplugConfigurator(_OTelSDKConfigurator):
    def _configure(self, **kwargs):
        kwargs.setdefault("export_span_processor", span_processor_for)
        kwargs.setdefault("export_log_record_processor", log_processor_for)
        super()._configure(**kwargs)


class OtelplugDistro(BaseDistro):
    def _configure(self, **kwargs):
        if os.environ.get(OTEL_PYTHON_DISTRO, "").strip() != DISTRO_NAME:
            return      # picked by default, not chosen: leave the SDK's defaults alone
        for var in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
            os.environ.setdefault(var, "otelplug")
