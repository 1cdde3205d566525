"""The processor helper: counts in and out, drops settled, errors contained.

A processor author subclasses ``Processor`` and writes ``process(records)``
returning the records to pass on (a selection, a new set) or None to drop
them all.  Items dropped here are counted as
``otelplug_processor_dropped_items`` and their acks settled: deliberately
dropped data is done with.
"""
from __future__ import annotations

import logging
import time

from ..consumer import Consumer, Refused
from otelplug.codec.recordset import RecordSet

log = logging.getLogger("otelplug.sidecar")


class Processor(Consumer):
    def __init__(self, settings, config, next_consumer: Consumer):
        self.settings = settings
        self.config = config
        self.next = next_consumer
        self.id = str(settings.id)
        self.signal = settings.signal
        tel = settings.telemetry
        labels = ("processor", "otel_signal")
        self._in = tel.counter("processor_incoming_items", "Items that entered the processor", labels)
        self._out = tel.counter("processor_outgoing_items", "Items the processor passed on", labels)
        self._dropped = tel.counter("processor_dropped_items", "Items the processor dropped", labels)
        self._failed = tel.counter("processor_failed_items",
                                   "Items dropped because the processor failed on them", labels)
        self._seconds = tel.counter("processor_process_seconds",
                                    "Time spent in the processor's transform", labels)

    def process(self, records: RecordSet) -> RecordSet | None:
        raise NotImplementedError

    def consume(self, records: RecordSet) -> None:
        lab = {"processor": self.id, "otel_signal": records.signal}
        self._in.add(records.items, **lab)
        t0 = time.perf_counter()
        try:
            out = self.process(records)
        except Refused:
            raise
        except Exception:  # a bug or bad data must not stop the pipeline
            log.exception("processor %s failed on a batch of %d items; dropping it", self.id,
                          records.items)
            self._failed.add(records.items, **lab)
            records.settle(ok=False)
            return
        self._seconds.add(time.perf_counter() - t0, **lab)
        if out is None or len(out) == 0:
            self._dropped.add(records.items, **lab)
            records.settle()
            return
        self._dropped.add(records.items - out.items, **lab)
        self._out.add(out.items, **lab)
        self.next.consume(out)

    def start(self, host) -> None:
        pass

    def shutdown(self) -> None:
        pass
