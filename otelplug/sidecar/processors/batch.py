"""batch: groups records into batches by size or time (the Collector's
batch processor: send_batch_size, timeout, send_batch_max_size).

Nothing is acknowledged here: a merged batch carries the acks of every
input, and they settle only when the next consumer took the batch (an
exporter queued or sent it).  When the next consumer refuses (a full
sending queue, a full disk under a persistent queue), the batch is kept
and offered again with a backoff, and until it is taken this processor
refuses new data itself: the refusal reaches the receiver, so ring data
stays in the rings and OTLP clients get a retryable answer.  Memory held
here is therefore bounded by one send_batch_size (plus the records that
arrived while the batch was being taken).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from ..ack import hold_all
from ..component import Factory, Kind
from ..config.decode import Duration
from ..consumer import Refused
from otelplug.codec.recordset import RecordSet
from ..helpers.processor import Processor, log
from ..memory import HELD, record_bytes

_RETRY_FIRST = 0.05      # s before offering a refused batch again ...
_RETRY_MAX = 1.0         # ... doubling up to this
_SHUTDOWN_RETRY = 2.0    # s shutdown keeps offering a refused batch


@dataclass
class BatchConfig:
    """``send_batch_size``: items that make a batch go out at once.

    ``timeout``: the longest a batch waits to fill before it goes out.

    ``send_batch_max_size``: batches larger than this are split; 0: no upper limit.
    """
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
        # chunks the next consumer refused, oldest first; while any is
        # here, new data is refused (back-pressure) and the timer retries
        self._blocked: deque[RecordSet] = deque()
        self._retry_at = 0.0
        self._retry_delay = _RETRY_FIRST
        self._send_lock = threading.Lock()   # one sender at a time keeps batches in order
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick, name=f"{self.id}-timer", daemon=True)
        self._size_trigger = settings.telemetry.counter(
            "processor_batch_batch_send_size_trigger", "Batches sent because of the size trigger",
            ("processor",))
        self._timeout_trigger = settings.telemetry.counter(
            "processor_batch_timeout_trigger_send", "Batches sent because of the timeout trigger",
            ("processor",))
        self._refused = settings.telemetry.counter(
            "processor_refused_items",
            "Items a processor refused (back-pressure: the sender keeps them and offers them "
            "again, so an item refused N times counts N times)", ("processor", "otel_signal"))
        self._holder = f"processor/{self.id}/{self.signal}"

    def start(self, host) -> None:
        self._timer.start()

    def consume(self, records: RecordSet) -> None:
        with self._lock:
            if self._blocked:
                self._refused.add(records.items, processor=self.id, otel_signal=records.signal)
                raise Refused(f"{self.id}: the next consumer refused a batch; retrying it first")
            if not self._pending:
                self._first_at = time.monotonic()
                self._lock.notify()       # the timer sleeps until there is a deadline
            self._pending.append(records)
            self._records += len(records)
            HELD.add(self._holder, record_bytes(records))
            full = self.config.send_batch_size and self._records >= self.config.send_batch_size
            out = self._take() if full else None
        self._in.add(records.items, processor=self.id, otel_signal=records.signal)
        if out is not None:
            self._size_trigger.add(1, processor=self.id)
            self._send(self._chunks(out))

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
        """Sleep until the oldest pending batch is due, or a refused one is
        to be offered again (with nothing to do, until data arrives), then
        send it: no periodic wake-ups."""
        timeout = float(self.config.timeout) or 0.2
        while not self._stop.is_set():
            with self._lock:
                if self._blocked:
                    left = self._retry_at - time.monotonic()
                    if left > 0:
                        self._lock.wait(left)
                        continue
                    out = None
                elif not self._pending:
                    self._lock.wait(1.0)
                    continue
                else:
                    left = self._first_at + timeout - time.monotonic()
                    if left > 0:
                        self._lock.wait(left)
                        continue
                    out = self._take()
            if out is not None:
                self._timeout_trigger.add(1, processor=self.id)
                self._send(self._chunks(out))
            else:
                self._send([])

    def _chunks(self, sets: list[RecordSet]) -> list[RecordSet]:
        merged = RecordSet.concat(sets)
        limit = self.config.send_batch_max_size
        if not limit or len(merged) <= limit:
            return [merged]
        chunks = [merged.select(slice(i, i + limit)) for i in range(0, len(merged), limit)]
        hold_all(merged.acks, len(chunks) - 1)   # each chunk settles its share
        total = merged.items
        for c in chunks:  # items per chunk: proportional for multi-item records
            c.items = total * len(c) // len(merged)
        chunks[-1].items += total - sum(c.items for c in chunks)
        return chunks

    def _send(self, chunks: list[RecordSet]) -> bool:
        """Offer the refused chunks, then ``chunks``, in order; whatever is
        refused stays (blocked) for a later retry.  True if all were taken."""
        with self._send_lock:
            with self._lock:
                queue = list(self._blocked) + chunks
                self._blocked.clear()
            for i, c in enumerate(queue):
                if not self._hand_on(c):
                    with self._lock:
                        self._blocked.extend(queue[i:])
                        self._retry_at = time.monotonic() + self._retry_delay
                        self._retry_delay = min(self._retry_delay * 2, _RETRY_MAX)
                        self._lock.notify()
                    return False
            with self._lock:
                self._retry_delay = _RETRY_FIRST
            return True

    def _hand_on(self, c: RecordSet) -> bool:
        """False if refused (kept); True once taken, or dropped on a failure
        (counted, acks settled as failed)."""
        n = record_bytes(c)
        try:
            self.next.consume(c)
        except Refused as exc:
            log.info("%s: next consumer refused %d items (%s); keeping them", self.id, c.items, exc)
            return False
        except Exception:
            log.exception("%s: downstream failed on %d items; dropping them", self.id, c.items)
            self._failed.add(c.items, processor=self.id, otel_signal=c.signal)
            c.settle(ok=False)
        else:
            self._out.add(c.items, processor=self.id, otel_signal=c.signal)
        HELD.sub(self._holder, n)
        return True

    def shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._timer.is_alive():
            self._timer.join()
        with self._lock:
            out = self._take() if self._pending else None
        chunks = self._chunks(out) if out else []
        deadline = time.monotonic() + _SHUTDOWN_RETRY
        while not self._send(chunks) and time.monotonic() < deadline:
            chunks = []
            time.sleep(_RETRY_FIRST)
        with self._lock:
            left, self._blocked = list(self._blocked), deque()
        for c in left:
            # receivers are already stopped: ring data stays uncommitted (the
            # next sidecar reads it again); anything else is lost, and counted
            log.warning("%s: shutting down with %d items the next consumer refused", self.id, c.items)
            self._failed.add(c.items, processor=self.id, otel_signal=c.signal)
            HELD.sub(self._holder, record_bytes(c))
            c.settle(ok=False)


factory = Factory("batch", Kind.PROCESSOR, BatchConfig, BatchProcessor)
