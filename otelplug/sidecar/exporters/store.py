"""store: writes spans, log records and metric points into the telemetry
store (otelplug/store/: DuckDB by default, PostgreSQL when shared).

Delivery: a batch is acknowledged to the rings only once its transaction
committed (the exporter helper settles acks after ``send`` returns), so a
sidecar killed mid-write loses nothing; the replay after restart does not
duplicate spans (the store skips a (TraceId, SpanId) it already holds) and
the skipped rows are counted.  A store that is unreachable, corrupt or of
another schema version fails ``send`` with a Retryable naming it: the helper
backs off and retries (forever by default, so data waits in the queue and
then in the rings, whose drops are counted), other pipelines are unaffected.

The exporter id is one store: its traces, metrics and logs instances share
one connection (a DuckDB file has one writer), one retention thread, and,
for DuckDB, one read server for other processes (serve.py).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from ..component import Factory, Kind
from ..config.decode import Duration
from ..helpers.exporter import Exporter, Permanent, QueueConfig, RetryConfig, Retryable

log = logging.getLogger("otelplug.store")


@dataclass
class StoreConfig:
    """``url``: the store: ``duckdb:///path/file.duckdb`` or
    ``postgresql://user@host:port/db``.

    ``prune_interval``: how often retention and the size cap are applied.

    ``timeout``: the time one write transaction may take.

    ``sending_queue``: one writer, a short queue: the rings hold the backlog.

    ``retry_on_failure``: retries of failed writes; forever by default, so
    data waits in the queue, then in the rings, while the store is down.
    """
    # duckdb:///path/file.duckdb (relative paths are from the working
    # directory) or postgresql://user@host:port/db
    url: str = "duckdb://otelplug-store.duckdb"
    retention: str = "72h"            # drop partitions older than this ("0": keep all)
    max_size_mib: int = 0             # drop the oldest partitions above this (0: no cap)
    prune_interval: Duration = Duration(60.0)
    serve_reads: bool = True          # DuckDB: answer other processes' queries
    memory_limit: str = "64MB"        # DuckDB's buffer pool (the sidecar's RSS)
    threads: int = 1                  # DuckDB worker threads
    timeout: Duration = Duration(30.0)
    sending_queue: QueueConfig = field(default_factory=lambda: QueueConfig(
        num_consumers=1, queue_size=64))
    # forever by default: data waits (queue, then rings) while the store is down
    retry_on_failure: RetryConfig = field(default_factory=lambda: RetryConfig(
        initial_interval=Duration(1.0), max_interval=Duration(30.0),
        max_elapsed_time=Duration(0.0)))

    def validate(self):
        from otelplug.store import StoreError, parse_url
        from otelplug.store.timeparse import parse_duration
        errs = []
        try:
            parse_url(self.url)
        except StoreError as exc:
            errs.append((("url",), str(exc)))
        try:
            parse_duration(self.retention) if str(self.retention).strip() != "0" else 0
        except ValueError as exc:
            errs.append((("retention",), str(exc)))
        if self.max_size_mib < 0:
            errs.append((("max_size_mib",), "must be 0 (no cap) or positive"))
        if self.prune_interval <= 0:
            errs.append((("prune_interval",), "must be positive"))
        if self.threads < 1:
            errs.append((("threads",), "must be at least 1"))
        return errs

    @property
    def retention_seconds(self) -> float | None:
        from otelplug.store.timeparse import parse_duration
        s = str(self.retention).strip()
        return None if s == "0" else parse_duration(s)


class _SharedStore:
    """One open store per URL in this process, shared by the exporter
    instances (traces, metrics, logs) that name it; opened lazily, reopened
    after a failure."""

    _all: dict[str, "_SharedStore"] = {}
    _all_lock = threading.Lock()

    @classmethod
    def acquire(cls, config: StoreConfig, telemetry, exporter_id: str) -> "_SharedStore":
        with cls._all_lock:
            s = cls._all.get(config.url)
            if s is None:
                s = cls._all[config.url] = cls(config, telemetry, exporter_id)
            s.users += 1
            return s

    def __init__(self, config: StoreConfig, telemetry, exporter_id: str):
        self.config = config
        self.exporter_id = exporter_id
        self.users = 0
        self.store = None
        self.server = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pruner = None
        self.size = telemetry.gauge("store_size_bytes", "Bytes the telemetry store occupies",
                                    ("exporter",))
        self.pruned = telemetry.counter("store_pruned_rows", "Rows removed by retention",
                                        ("exporter",))
        self.prune_errors = telemetry.counter("store_prune_errors", "Retention runs that failed",
                                              ("exporter",))

    def get(self):
        """The open store; StoreError if it cannot be opened now."""
        with self._lock:
            if self.store is None:
                from otelplug.store import open_store
                c = self.config
                opts = {"memory_limit": c.memory_limit, "threads": c.threads} \
                    if c.url.startswith("duckdb:") or "://" not in c.url else {}
                from otelplug.store import StoreError
                try:
                    self.store = open_store(c.url, mode="write", **opts)
                except StoreError:
                    raise
                except Exception as exc:    # e.g. a DuckDB file another process writes
                    raise StoreError(f"store {c.url}: cannot open for writing: "
                                     f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                                     ) from None
                if c.serve_reads and hasattr(self.store, "path"):
                    from otelplug.store.serve import StoreServer
                    try:
                        self.server = StoreServer(self.store)
                        self.server.start()
                    except OSError as exc:  # ingest goes on; other processes cannot read meanwhile
                        log.warning("store %s: cannot serve other processes' queries: %s",
                                    self.store.url, exc)
                        self.server = None
                log.info("store %s: open", self.store.url)
                if self._pruner is None:
                    self._pruner = threading.Thread(target=self._prune_loop, daemon=True,
                                                    name=f"{self.exporter_id}-retention")
                    self._pruner.start()
            return self.store

    def invalidate(self, reason) -> None:
        """Close the store after a failed write, so the next attempt opens
        it afresh: DuckDB refuses all writes after an I/O error (a full disk)
        until the database is reopened; a PostgreSQL connection may be dead."""
        with self._lock:
            if self.store is None:
                return
            log.warning("%s (closing the store; it is reopened on the next retry)", reason)
            if self.server is not None:
                self.server.close()
            try:
                self.store.close()
            except Exception:
                pass
            self.store = self.server = None

    def _prune_loop(self):
        c = self.config
        while not self._stop.wait(float(c.prune_interval)):
            self.prune_once()

    def prune_once(self) -> int:
        c = self.config
        store = self.store
        if store is None:
            return 0
        try:
            n = store.prune(older_than=c.retention_seconds,
                            max_bytes=c.max_size_mib << 20 if c.max_size_mib else None)
            maintain = getattr(store, "maintain", None)   # DuckDB: trace-id tables of past hours
            if maintain is not None:
                maintain()
            self.pruned.add(n, exporter=self.exporter_id)
            if n:
                log.info("store %s: retention removed %d rows", store.url, n)
            self.size.set(store.size_bytes(), exporter=self.exporter_id)
            return n
        except Exception as exc:
            self.prune_errors.add(1, exporter=self.exporter_id)
            log.warning("store %s: retention failed: %s", store.url, exc)
            return 0

    def release(self):
        with self._all_lock:
            self.users -= 1
            if self.users > 0:
                return
            self._all.pop(self.config.url, None)
        self._stop.set()
        if self._pruner is not None:
            self._pruner.join(timeout=10)
        with self._lock:
            if self.server is not None:
                self.server.close()
            if self.store is not None:
                self.store.close()
            self.store = self.server = None


class StoreExporter(Exporter):
    def __init__(self, settings, config: StoreConfig):
        super().__init__(settings, config)
        tel = settings.telemetry
        self._written = tel.counter("store_written_rows", "Rows committed to the telemetry store",
                                    ("exporter", "signal"))
        self._skipped = tel.counter("store_duplicate_rows",
                                    "Replayed spans the store already held (not written twice)",
                                    ("exporter", "signal"))
        self._write_seconds = tel.counter("store_write_seconds",
                                          "Time spent writing batches to the store", ("exporter",))
        self._writes = tel.counter("store_writes", "Batches committed to the store", ("exporter",))
        self._last = tel.gauge("store_last_write_seconds", "Latency of the last committed batch",
                               ("exporter",))
        self.shared = None

    def start(self, host) -> None:
        self.shared = _SharedStore.acquire(self.config, self.settings.telemetry, self.id)
        try:
            self.shared.get()
        except Exception as exc:
            # not fatal: send() retries with backoff and the rest of the
            # sidecar runs
            log.error("exporter %s: %s (will retry)", self.id, exc)
        super().start(host)

    def send(self, records, timeout: float) -> None:
        from otelplug.store import StoreError
        try:
            store = self.shared.get()
        except StoreError as exc:
            raise Retryable(str(exc)) from None
        t0 = time.perf_counter()
        try:
            written = store.write(records)
        except StoreError as exc:
            self.shared.invalidate(exc)
            raise Retryable(str(exc)) from None
        except (ValueError, KeyError) as exc:   # records the decoder cannot read
            raise Permanent(f"undecodable records: {exc}") from None
        dt = time.perf_counter() - t0
        self._write_seconds.add(dt, exporter=self.id)
        self._writes.add(1, exporter=self.id)
        self._last.set(dt, exporter=self.id)
        self._written.add(written, exporter=self.id, signal=records.signal)
        if records.signal == "traces" and written < records.items:
            self._skipped.add(records.items - written, exporter=self.id, signal=records.signal)

    def shutdown(self, drain_timeout: float = 5.0) -> None:
        super().shutdown(drain_timeout)
        if self.shared is not None:
            self.shared.release()
            self.shared = None


factory = Factory("store", Kind.EXPORTER, StoreConfig, StoreExporter)
