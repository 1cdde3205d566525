"""ShmSpanProcessor: ended spans go straight into this process's ring.

One Cython encode and one ring write per span, on the thread that ends the
span: no queue, no worker thread, no network, no lock on the hot path.  A
full ring or an oversize span is dropped and counted (ring counters,
``stats()``, and the SDK's processor metric when enabled), never blocks the
app, never raises into it.
"""
from __future__ import annotations

import logging

from opentelemetry.sdk.trace import SpanProcessor

from otelplug import codec as _codec
from otelplug.codec import types as _types

from . import _selfmetrics, _shared

log = logging.getLogger("otelplug.producer")

_SPAN = _types.SPAN


class PySpanWriter:
    """The Cython ``SpanWriter`` (otelplug/_ext/span_codec) in Python, for the
    pure-Python codec: sampled check, definition keys, encode, ring write,
    and on_end's counters."""

    def __init__(self, producer, definitions, max_record=0, on_error=None):
        self._producer = producer
        self._defs = definitions
        self._encode = definitions.codec.encode_span
        self._max_record = max_record
        self._on_error = on_error
        self.last_size = 0
        self.shutdown = False
        self.written = self.dropped = self.too_large = 0
        self.encode_errors = self.after_shutdown = 0

    def reset(self) -> None:
        pass

    def write_span(self, span) -> int:
        if not span.context.trace_flags & 1:   # not sampled: not exported (as the SDK's)
            return -1
        defs = self._defs
        rec = self._encode(span, defs.resource_key(span.resource),
                           defs.scope_key(span.instrumentation_scope))
        self.last_size = len(rec)
        return 1 if self._producer.write(_SPAN, rec) else 0

    def on_end(self, span) -> None:
        if self.shutdown:
            self.after_shutdown += 1
            return
        try:
            r = self.write_span(span)
        except Exception as exc:
            self.encode_errors += 1
            if self._on_error is not None:
                self._on_error(span, exc)
            return
        if r > 0:
            self.written += 1
        elif r == 0:
            self.dropped += 1
            self.too_large += self.last_size > self._max_record


class ShmSpanProcessor(SpanProcessor):
    """Write every ended, sampled span into the shared-memory ring.

    Args:
        channel: ring channel (default ``$OTELPLUG_CHANNEL`` or ``default``).
        capacity, max_record: ring sizing, see ``otelplug.ring.Producer``
            (the first processor of a channel in a process decides).
        stamp_pid: set ``process.pid`` in the resource written to the ring to
            the writing process's pid (see ``otelplug.producer._shared``).
        producer: use this ``otelplug.ring.Producer`` instead of the shared one.
        meter_provider: for the SDK processor self-metrics, if enabled.
        codec: codec implementation (default: Cython; ``otelplug.codec.by_name``).

    Counters: ``written``, ``dropped`` (ring full or record too large; of
    which ``too_large``), ``encode_errors``, ``after_shutdown``; ``stats()``
    adds the ring's.
    """

    _component_type = "otelplug_shm_span_processor"

    def __init__(self, channel: str | None = None, *, capacity: int | None = None,
                 max_record: int | None = None, stamp_pid: bool = True, producer=None,
                 meter_provider=None, codec=None):
        self._codec = codec or _codec.default_impl()
        self._shared = _shared.acquire(channel, capacity=capacity, max_record=max_record,
                                       stamp_pid=stamp_pid, producer=producer, codec=self._codec)
        self._producer = self._shared.producer
        self._defs = self._shared.definitions
        writer_class = getattr(self._codec, "SpanWriter", None) or PySpanWriter
        self._writer = writer_class(self._producer, self._defs, self._shared.max_record,
                                    self._encode_failed)
        _shared.reset_after_fork(self._writer)
        self._metrics = _selfmetrics.processor_metrics("traces", self._component_type,
                                                       meter_provider)
        if not self._metrics.enabled:
            # the hot path: the SDK calls the writer's on_end directly
            self.on_end = self._writer.on_end
        self._unavailable_seen = 0
        self._warned = False

    @property
    def producer(self):
        return self._producer

    def on_start(self, span, parent_context=None) -> None:
        pass

    def on_end(self, span) -> None:
        """Used when self-metrics are on (otherwise the writer's on_end is
        installed on the instance): the same, plus the metric."""
        w = self._writer
        before = (w.written, w.dropped, w.too_large, w.encode_errors, w.after_shutdown)
        w.on_end(span)
        m = self._metrics
        if w.written != before[0]:
            m.finish_items(1)
        elif w.too_large != before[2]:
            m.drop_items(1, "too_large")
        elif w.dropped != before[1]:
            m.drop_items(1, "queue_full")
        elif w.encode_errors != before[3]:
            m.drop_items(1, "encode_error")
        elif w.after_shutdown != before[4]:
            m.drop_items(1, "already_shutdown")

    def _encode_failed(self, span, exc) -> None:
        if not self._warned:
            self._warned = True
            log.warning("otelplug: cannot encode span %r (%s: %s); such spans are "
                        "dropped and counted", getattr(span, "name", "?"),
                        type(exc).__name__, exc)

    written = property(lambda self: self._writer.written)
    dropped = property(lambda self: self._writer.dropped)
    too_large = property(lambda self: self._writer.too_large)
    encode_errors = property(lambda self: self._writer.encode_errors)
    after_shutdown = property(lambda self: self._writer.after_shutdown)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Writes are synchronous: everything accepted so far is committed.
        False after shutdown, or if spans were lost since the last flush
        because no ring could be created."""
        if self._writer.shutdown:
            return False
        lost = self._producer.unavailable
        ok = lost == self._unavailable_seen
        self._unavailable_seen = lost
        return ok

    def shutdown(self) -> None:
        """Later spans are ignored (counted as ``after_shutdown``); the ring is
        marked closed once every otelplug user of the channel has shut down."""
        if self._writer.shutdown:
            return
        self._writer.shutdown = True
        self._shared.release()

    def stats(self) -> dict:
        """This processor's counters, and this process's ring counters."""
        return {"written": self.written, "dropped": self.dropped, "too_large": self.too_large,
                "encode_errors": self.encode_errors, "after_shutdown": self.after_shutdown,
                "ring": self._producer.stats()}
