"""batch: groups records into batches by size or time (the Collector's
batch processor: send_batch_size, timeout, send_batch_max_size)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..ack import hold_all
from ..component import Factory, Kind
from ..config.decode import Duration
from ..consumer import Refused
from ..data import RecordSet
from ..helpers.processor import Processor, log


@dataclass
class BatchConfig:
    send_batch_size: int = 8192
    timeout: Duration = Duration(0.2)
    send_batch_max_size: int = 0      # 0: no upper limit

    def validate(self):
        errs = []
        if self.send_batch_size < 0:
            errs.append((("send_batch_size",), "must not be negative"))
        if self.send_batch_max_size and self.send_batch_max_size < self.send_batch_size:
            errs.append("send_batch_max_size must be >= send_batch_size")
        if self.timeout < 0:
            errs.append((("timeout",), "must not be negative"))
        return errs


class BatchProcessor(Processor):
    def __init__(self, settings, config: BatchConfig, next_consumer):
        super().__init__(settings, config, next_consumer)
        self._pending: list[RecordSet] = []
        self._records = 0
        self._first_at = 0.0
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick, name=f"{self.id}-timer", daemon=True)
        self._size_trigger = settings.telemetry.counter(
            "processor_batch_batch_send_size_trigger", "Batches sent because of the size trigger",
            ("processor",))
        self._timeout_trigger = settings.telemetry.counter(
            "processor_batch_timeout_trigger_send", "Batches sent because of the timeout trigger",
            ("processor",))

    def start(self, host) -> None:
        self._timer.start()

    def consume(self, records: RecordSet) -> None:
        lab = {"processor": self.id, "otel_signal": records.signal}
        self._in.add(records.items, **lab)
        with self._lock:
            if not self._pending:
                self._first_at = time.monotonic()
                self._lock.notify()       # the timer sleeps until there is a deadline
            self._pending.append(records)
            self._records += len(records)
            full = self.config.send_batch_size and self._records >= self.config.send_batch_size
            out = self._take() if full else None
        if out is not None:
            self._size_trigger.add(1, processor=self.id)
            self._emit(out)

    def flush_now(self) -> int:
        """Send what is pending now (the HTTP API's ``POST /api/v1/collect``);
        returns the records sent."""
        with self._lock:
            out = self._take() if self._pending else None
        if out is None:
            return 0
        self._emit(out)
        return sum(len(r) for r in out)

    def _take(self):
        out, self._pending, self._records = self._pending, [], 0
        return out

    def _tick(self) -> None:
        """Sleep until the oldest pending batch is due (or, with nothing
        pending, until data arrives), then send it: no periodic wake-ups."""
        timeout = float(self.config.timeout) or 0.2
        while not self._stop.is_set():
            with self._lock:
                if not self._pending:
                    self._lock.wait(1.0)
                    continue
                left = self._first_at + timeout - time.monotonic()
                if left > 0:
                    self._lock.wait(left)
                    continue
                out = self._take()
            self._timeout_trigger.add(1, processor=self.id)
            self._emit(out)

    def _emit(self, sets: list[RecordSet]) -> None:
        merged = RecordSet.concat(sets)
        limit = self.config.send_batch_max_size
        chunks = [merged] if not limit or len(merged) <= limit else [
            merged.select(slice(i, i + limit)) for i in range(0, len(merged), limit)]
        if len(chunks) > 1:
            hold_all(merged.acks, len(chunks) - 1)   # each chunk settles its share
            total = merged.items
            for c in chunks:  # items per chunk: proportional for multi-item records
                c.items = total * len(c) // len(merged)
            chunks[-1].items += total - sum(c.items for c in chunks)
        for c in chunks:
            self._out.add(c.items, processor=self.id, otel_signal=c.signal)
            try:
                self.next.consume(c)
            except Refused:
                # nobody upstream is waiting on a batch anymore: count it
                log.warning("%s: downstream refused %d items; dropping them", self.id, c.items)
                self._failed.add(c.items, processor=self.id, otel_signal=c.signal)
                c.settle(ok=False)
            except Exception:
                log.exception("%s: downstream failed on %d items", self.id, c.items)
                self._failed.add(c.items, processor=self.id, otel_signal=c.signal)
                c.settle(ok=False)

    def shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._timer.is_alive():
            self._timer.join()
        with self._lock:
            out = self._take() if self._pending else None
        if out:
            self._emit(out)


factory = Factory("batch", Kind.PROCESSOR, BatchConfig, BatchProcessor)
