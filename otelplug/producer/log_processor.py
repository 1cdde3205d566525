"""ShmLogRecordProcessor: log records and events go straight into the ring.

Same contract as ShmSpanProcessor: one encode and one ring write on the
emitting thread; drops counted, never blocks, never raises into the app.
"""
from __future__ import annotations

import logging

from opentelemetry.sdk._logs import LogRecordProcessor

from otelplug import codec as _codec
from otelplug.codec import types as _types

from . import _selfmetrics, _shared

log = logging.getLogger("otelplug.producer")

_LOG = _types.LOG


class ShmLogRecordProcessor(LogRecordProcessor):
    """Write every emitted log record (or event) into the shared-memory ring.

    Arguments as for ``ShmSpanProcessor``.
    """

    _component_type = "otelplug_shm_log_processor"

    def __init__(self, channel: str | None = None, *, capacity: int | None = None,
                 max_record: int | None = None, stamp_pid: bool = True, producer=None,
                 meter_provider=None, codec=None):
        self._codec = codec or _codec.default_impl()
        self._shared = _shared.acquire(channel, capacity=capacity, max_record=max_record,
                                       stamp_pid=stamp_pid, producer=producer, codec=self._codec)
        self._producer = self._shared.producer
        self._defs = self._shared.definitions
        self._encode = self._codec.encode_log
        self._metrics = _selfmetrics.processor_metrics("logs", self._component_type,
                                                       meter_provider)
        self._count_metrics = self._metrics.enabled
        self._shutdown = False
        self._unavailable_seen = 0
        self.written = 0
        self.dropped = 0
        self.too_large = 0
        self.encode_errors = 0
        self.after_shutdown = 0
        self._warned = False

    @property
    def producer(self):
        return self._producer

    def on_emit(self, log_record) -> None:
        if self._shutdown:
            self.after_shutdown += 1
            if self._count_metrics:
                self._metrics.drop_items(1, "already_shutdown")
            return
        try:
            self._write(log_record)
        except Exception as exc:  # never into the app
            self.encode_errors += 1
            if self._count_metrics:
                self._metrics.drop_items(1, "encode_error")
            if not self._warned:
                self._warned = True
                log.warning("otelplug: cannot encode a log record (%s: %s); such records "
                            "are dropped and counted", type(exc).__name__, exc)

    # the SDK calls this ``emit`` in some versions
    emit = on_emit

    def _write(self, rw) -> None:
        """``rw``: the SDK's ReadWriteLogRecord / ReadableLogRecord (or anything
        with log_record, resource, instrumentation_scope)."""
        defs = self._defs
        rec = self._encode(rw.log_record, rw.dropped_attributes,
                           defs.resource_key(rw.resource),
                           defs.scope_key(rw.instrumentation_scope))
        if self._producer.write(_LOG, rec):
            self.written += 1
            if self._count_metrics:
                self._metrics.finish_items(1)
        else:
            self.dropped += 1
            too_large = len(rec) > self._shared.max_record
            self.too_large += too_large
            if self._count_metrics:
                self._metrics.drop_items(1, "too_large" if too_large else "queue_full")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._shutdown:
            return False
        lost = self._producer.unavailable
        ok = lost == self._unavailable_seen
        self._unavailable_seen = lost
        return ok

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        self._shared.release()

    def stats(self) -> dict:
        return {"written": self.written, "dropped": self.dropped, "too_large": self.too_large,
                "encode_errors": self.encode_errors, "after_shutdown": self.after_shutdown,
                "ring": self._producer.stats()}
