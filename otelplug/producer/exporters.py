"""Exporters for ``OTEL_TRACES_EXPORTER=otelplug`` / ``OTEL_LOGS_EXPORTER=otelplug``.

The SDK's auto-configuration wraps an exporter in a BatchSpanProcessor (a
queue and a thread).  These exporters still write straight into the ring,
so that path works with any configurator; otelplug's own configurator
(``OTEL_PYTHON_CONFIGURATOR=otelplug``, or when it is the only one
installed) recognises them and installs ``ShmSpanProcessor`` /
``ShmLogRecordProcessor`` directly instead, without the batching thread.
"""
from __future__ import annotations

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .log_processor import ShmLogRecordProcessor
from .span_processor import ShmSpanProcessor


class ShmSpanExporter(SpanExporter):
    """A SpanExporter over a ShmSpanProcessor (same arguments)."""

    def __init__(self, channel: str | None = None, **kwargs):
        self.channel = channel
        self.kwargs = kwargs
        self._processor = None

    @property
    def processor(self) -> ShmSpanProcessor:
        if self._processor is None:
            self._processor = ShmSpanProcessor(self.channel, **self.kwargs)
        return self._processor

    def export(self, spans) -> SpanExportResult:
        p = self.processor
        before = p.written
        for span in spans:
            p.on_end(span)
        return SpanExportResult.SUCCESS if p.written - before == len(spans) else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._processor is None or self._processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        if self._processor is not None:
            self._processor.shutdown()


class ShmLogExporter(LogRecordExporter):
    """A LogRecordExporter over a ShmLogRecordProcessor (same arguments)."""

    def __init__(self, channel: str | None = None, **kwargs):
        self.channel = channel
        self.kwargs = kwargs
        self._processor = None

    @property
    def processor(self) -> ShmLogRecordProcessor:
        if self._processor is None:
            self._processor = ShmLogRecordProcessor(self.channel, **self.kwargs)
        return self._processor

    def export(self, batch) -> LogRecordExportResult:
        p = self.processor
        before = p.written
        for rec in batch:
            p.on_emit(rec)
        return (LogRecordExportResult.SUCCESS if p.written - before == len(batch)
                else LogRecordExportResult.FAILURE)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._processor is None or self._processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        if self._processor is not None:
            self._processor.shutdown()
