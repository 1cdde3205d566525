"""The exporter helper: queue, retry with exponential backoff, timeout and
counts, around the one function an exporter author writes:
``send(records, timeout)``.

``send`` raises ``Retryable`` (optionally with the server's requested delay)
for transient failures and ``Permanent`` for data the destination will never
take.  Counting follows the Collector: ``sent``, ``send_failed`` and
``enqueue_failed`` items per exporter, plus queue size and capacity.

A full queue, or a persistent queue that cannot write (a full disk),
raises ``Refused``: the data stays with the sender, in the rings or with
the OTLP client, which offers it again.  A refusal is counted in
``enqueue_failed`` the first time, and in ``enqueue_retried`` when the
sender offers the same set again; ``sent`` and ``send_failed`` count each
item once, by its final outcome.

Data is safe, and its acks settle, when it is in the persistent queue or
the destination acknowledged it.  With the in-memory queue the acks settle
only after a successful send, so upstream (the rings) holds the data until
then: a sidecar killed meanwhile loses nothing the producers committed.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ..config.decode import Duration
from ..consumer import Consumer, Refused
from otelplug.codec.recordset import RecordSet
from ..memory import HELD, record_bytes
from .persistent_queue import Corrupt, PersistentQueue

log = logging.getLogger("otelplug.sidecar")


class Retryable(Exception):
    def __init__(self, message: str, delay: float | None = None):
        super().__init__(message)
        self.delay = delay


class Permanent(Exception):
    pass


@dataclass
class QueueConfig:
    """``enabled``: send from a queue with its own workers, so a slow
    destination does not hold the pipeline up.

    ``num_consumers``: workers sending from the queue concurrently.

    ``queue_size``: batches the queue holds; a batch that does not fit is
    refused and counted (``exporter_enqueue_failed_*``).

    ``storage``: the id of a ``file_storage`` extension: the queue is kept on
    disk and survives restarts and long outages.
    """
    enabled: bool = True
    num_consumers: int = 10
    queue_size: int = 1000          # batches
    storage: str | None = None      # a file_storage extension id: persistent queue

    def validate(self):
        errs = []
        if self.enabled and self.num_consumers < 1:
            errs.append((("num_consumers",), "must be at least 1"))
        if self.enabled and self.queue_size < 1:
            errs.append((("queue_size",), "must be at least 1"))
        return errs


@dataclass
class RetryConfig:
    """``enabled``: retry a send that failed with a transient error.

    ``initial_interval``: the wait before the first retry.

    ``randomization_factor``: each wait is drawn from ``wait * (1 +- factor)``.

    ``multiplier``: each wait is the previous one times this.

    ``max_interval``: the longest wait between two attempts.

    ``max_elapsed_time``: give a batch up (counted as send failed) after
    retrying this long; 0 retries forever.
    """
    enabled: bool = True
    initial_interval: Duration = Duration(5.0)
    randomization_factor: float = 0.5
    multiplier: float = 1.5
    max_interval: Duration = Duration(30.0)
    max_elapsed_time: Duration = Duration(300.0)   # 0: retry forever

    def validate(self):
        errs = []
        if self.enabled:
            if self.initial_interval <= 0:
                errs.append((("initial_interval",), "must be positive"))
            if self.multiplier < 1:
                errs.append((("multiplier",), "must be at least 1"))
            if not 0 <= self.randomization_factor < 1:
                errs.append((("randomization_factor",), "must be in [0, 1)"))
            if self.max_interval < self.initial_interval:
                errs.append((("max_interval",), "must be >= initial_interval"))
        return errs


@dataclass
class ExporterSettingsMixin:
    """Fields every queued exporter config has (the Collector's names).

    ``timeout``: the time one send attempt may take.

    ``sending_queue``: the queue between the pipeline and the sends.

    ``retry_on_failure``: retries of sends that failed with a transient error.
    """
    timeout: Duration = Duration(5.0)
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)


_ITEM_WORD = {"traces": "spans", "metrics": "metric_points", "logs": "log_records"}


class Exporter(Consumer):
    """Subclass and implement ``send(records, timeout)``; optionally
    ``start(host)`` / ``shutdown()`` (call super)."""

    def __init__(self, settings, config):
        self.settings = settings
        self.config = config
        self.id = str(settings.id)
        tel = settings.telemetry
        self._counters = {}
        for sig, word in _ITEM_WORD.items():
            self._counters[sig] = (
                tel.counter(f"exporter_sent_{word}", f"{word} sent successfully", ("exporter",)),
                tel.counter(f"exporter_send_failed_{word}", f"{word} that could not be sent",
                            ("exporter",)),
                tel.counter(f"exporter_enqueue_failed_{word}",
                            f"{word} refused because the sending queue was full (the sender "
                            f"keeps them); once per item, re-offers are in enqueue_retried",
                            ("exporter",)),
            )
        self._enqueue_retried = tel.counter(
            "exporter_enqueue_retried_items",
            "Items offered again after the sending queue refused them (counted in "
            "enqueue_failed at their first refusal only)", ("exporter", "otel_signal"))
        self._retries = tel.counter("exporter_retries", "Send attempts that were retried",
                                    ("exporter",))
        self._queue_size = tel.gauge("exporter_queue_size", "Batches in the sending queue",
                                     ("exporter",))
        self._queue_capacity = tel.gauge("exporter_queue_capacity",
                                         "Capacity of the sending queue in batches", ("exporter",))
        qc: QueueConfig = getattr(config, "sending_queue", QueueConfig(enabled=False))
        self._qc = qc
        self._rc: RetryConfig = getattr(config, "retry_on_failure", RetryConfig(enabled=False))
        self._timeout = float(getattr(config, "timeout", 5.0) or 5.0)
        self._mem: deque = deque()
        self._pq: PersistentQueue | None = None
        self._cv = threading.Condition()
        self._stopping = threading.Event()
        self._workers: list[threading.Thread] = []
        self._inflight = 0
        self._write_failing = False   # log a failing persistent queue once per episode
        self._holder = f"exporter/{self.id}/{settings.signal or 'all'}"
        # the latest send error, so the HTTP API's health can say why exports fail
        self.last_error: str | None = None
        tel.on_collect(self._refresh_gauges)

    # -- the one thing subclasses write --------------------------------------
    def send(self, records: RecordSet, timeout: float) -> None:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------
    def start(self, host) -> None:
        if self._qc.enabled and self._qc.storage:
            storage = host.extension(self._qc.storage) if host is not None else None
            if storage is None:
                raise RuntimeError(f"exporters::{self.id}::sending_queue: storage "
                                   f"{self._qc.storage!r} is not a running extension")
            # one queue per (exporter, signal): the same exporter id in
            # traces and logs pipelines is two instances, as in the Collector
            sig = self.settings.signal or "all"
            self._pq = PersistentQueue(storage.directory_for(f"exporter-{self.id}-{sig}"),
                                       self._qc.queue_size)
        if self._qc.enabled:
            for i in range(self._qc.num_consumers):
                t = threading.Thread(target=self._work, name=f"{self.id}-sender-{i}", daemon=True)
                t.start()
                self._workers.append(t)

    def shutdown(self, drain_timeout: float = 5.0) -> None:
        """Send what is queued within ``drain_timeout``, then stop.  A
        persistent queue keeps what is left for the next start."""
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline and self._queued() + self._inflight > 0:
            time.sleep(0.01)
        self._stopping.set()
        with self._cv:
            self._cv.notify_all()
        for t in self._workers:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        while self._mem:  # what the deadline left behind is lost: count it
            rs = self._mem.popleft()
            self._count(rs, 1, rs.items)
            HELD.sub(self._holder, record_bytes(rs))
            rs.settle(ok=False)

    # -- consuming -------------------------------------------------------------
    def consume(self, records: RecordSet) -> None:
        if not self._qc.enabled:
            self._send_with_retry(records)
            return
        if self._pq is not None:
            try:
                ok = self._pq.put(records.to_bytes(), records.items)
            except OSError as exc:
                # nothing was kept and nothing acknowledged: the sender keeps
                # the data until the disk has room again
                if not self._write_failing:
                    log.error("exporter %s: persistent queue write failed, refusing data until "
                              "it works again: %s", self.id, exc)
                self._write_failing = True
                self._count_refusal(records)
                raise Refused(f"exporter {self.id}: persistent queue write failed: {exc}") from None
            if self._write_failing:
                log.warning("exporter %s: persistent queue writes work again", self.id)
                self._write_failing = False
            if not ok:
                self._count_refusal(records)
                raise Refused(f"exporter {self.id}: sending queue is full")
            records.settle()   # on disk and checked: safe
            with self._cv:
                self._cv.notify()
            return
        with self._cv:
            if len(self._mem) >= self._qc.queue_size:
                full = True
            else:
                full = False
                self._mem.append(records)
                HELD.add(self._holder, record_bytes(records))
                self._cv.notify()
        if full:
            # as the Collector: a full queue is an error to the sender, so
            # data waits upstream (in the rings, or an OTLP client retries)
            self._count_refusal(records)
            raise Refused(f"exporter {self.id}: sending queue is full")

    def _queued(self) -> int:
        return len(self._pq) if self._pq is not None else len(self._mem)

    def _work(self) -> None:
        while not self._stopping.is_set():
            with self._cv:
                while not self._stopping.is_set() and self._queued() == 0:
                    # woken by consume() and shutdown(); the timeout is only
                    # a safety net, so idle senders cost nothing
                    self._cv.wait(2.0)
                if self._stopping.is_set():
                    return
                self._inflight += 1
                if self._pq is not None:
                    item = self._pq.take()
                else:
                    item = self._mem.popleft() if self._mem else None
            try:
                if item is None:
                    continue
                if self._pq is not None:
                    self._send_entry(*item)
                else:
                    try:
                        self._send_with_retry(item)
                    finally:
                        HELD.sub(self._holder, record_bytes(item))
            finally:
                with self._cv:
                    self._inflight -= 1

    def _send_entry(self, ticket: int, blob) -> None:
        """Send one persistent queue entry; delete it once sent or given up
        (counted), keep it when interrupted by shutdown."""
        if isinstance(blob, Corrupt):
            self._drop_corrupt(ticket, blob.reason, blob.items)
            return
        try:
            rs = RecordSet.from_bytes(blob)
        except ValueError as exc:
            self._drop_corrupt(ticket, str(exc), 0)
            return
        HELD.add(self._holder, len(blob))
        try:
            delivered = self._send_with_retry(rs)
        finally:
            HELD.sub(self._holder, len(blob))
        if delivered is None:  # stopping: leave it on disk
            self._pq.release(ticket)
        else:
            self._pq.done(ticket)

    def _drop_corrupt(self, ticket: int, reason: str, items: int) -> None:
        log.error("exporter %s: dropping corrupt persistent queue entry %d (%s items): %s",
                  self.id, ticket, items or "unknown", reason)
        if items:
            self._counters[self.settings.signal or "traces"][1].add(items, exporter=self.id)
        self._pq.done(ticket)

    def _count_refusal(self, rs: RecordSet) -> None:
        if rs.refusals:
            self._enqueue_retried.add(rs.items, exporter=self.id, otel_signal=rs.signal)
        else:
            self._count(rs, 2, rs.items)
        rs.refusals += 1

    def _count(self, rs: RecordSet, which: int, n: int) -> None:
        self._counters[rs.signal][which].add(n, exporter=self.id)

    def _send_with_retry(self, rs: RecordSet):
        """True sent, False given up (counted); None: interrupted by shutdown
        with a persistent queue (the entry stays)."""
        rc = self._rc
        start = time.monotonic()
        interval = float(rc.initial_interval)
        while True:
            try:
                self.send(rs, self._timeout)
                self._count(rs, 0, rs.items)
                rs.settle()
                return True
            except Retryable as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                elapsed = time.monotonic() - start
                delay = exc.delay if exc.delay is not None else interval * (
                    1 + rc.randomization_factor * (2 * random.random() - 1))
                out_of_time = rc.max_elapsed_time and elapsed + delay > rc.max_elapsed_time
                if not rc.enabled or out_of_time:
                    log.warning("exporter %s: giving up on %d items after %.1fs: %s",
                                self.id, rs.items, elapsed, exc)
                    break
                self._retries.add(1, exporter=self.id)
                log.info("exporter %s: send failed (%s); retrying in %.2fs", self.id, exc, delay)
                if self._stopping.wait(delay):
                    if self._pq is not None:
                        return None
                    break
                interval = min(interval * rc.multiplier, float(rc.max_interval))
            except Permanent as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("exporter %s: destination rejected %d items permanently: %s",
                            self.id, rs.items, exc)
                break
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("exporter %s: unexpected error sending %d items", self.id, rs.items)
                break
        self._count(rs, 1, rs.items)
        rs.settle(ok=False)
        return False

    def _refresh_gauges(self) -> None:
        self._queue_size.set(self._queued(), exporter=self.id)
        self._queue_capacity.set(self._qc.queue_size if self._qc.enabled else 0, exporter=self.id)
