"""servicegraph: the Collector's servicegraph connector (traces -> metrics).

Spans are paired into edges (``edges.py``: client/server and
producer/consumer, database edges from a client span's database name,
virtual nodes for uninstrumented peers when a side expires) and each
completed edge counts in series with the Collector's names and labels
(``metrics.py``), emitted every ``metrics_flush_interval``.

Differences from the Collector, on purpose: ``database_name_attributes``
also looks at ``db.system.name`` by default (current semantic conventions
no longer set ``db.name``), and the peer attributes for virtual nodes start
with ``peer.service`` and ``server.address``; unpaired and dropped sides
are exported as ``traces_service_graph_unpaired_spans_total`` and
``..._dropped_spans_total`` too.  ``dimensions`` and exponential
histograms are not supported yet (a config using them is refused by name).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from otelplug import codec

from ...component import Factory, Kind
from ...config.decode import Duration
from ...consumer import Consumer
from ...sampling.attributes import ResourceAttributes
from otelplug.traces.edges import KIND_CLIENT, KIND_PRODUCER, EdgeStore, SideSpans
from .metrics import DEFAULT_BOUNDS, GraphSeries
from .records import series_records

log = logging.getLogger("otelplug.sidecar")

DEFAULT_PEER_ATTRIBUTES = ["peer.service", "db.name", "db.system.name", "messaging.system",
                           "server.address", "net.sock.peer.addr", "net.peer.name",
                           "rpc.service", "net.sock.peer.name", "http.url", "http.target"]


@dataclass
class StoreConfig:
    """``ttl``: how long one side of a request waits for the other.

    ``max_items``: at most this many sides wait; more are dropped and
    counted in ``traces_service_graph_dropped_spans_total``.
    """
    ttl: Duration = Duration(2.0)
    max_items: int = 1000

    def validate(self):
        errs = []
        if self.ttl <= 0:
            errs.append((("ttl",), "must be positive"))
        if self.max_items <= 0:
            errs.append((("max_items",), "must be positive"))
        return errs


@dataclass
class ServiceGraphConfig:
    """``latency_histogram_buckets``: upper bounds of the request duration
    buckets, increasing.

    ``store``: the waiting room of unpaired request sides.

    ``store_expiration_loop``: how often waiting sides are checked for expiry.

    ``virtual_node_peer_attributes``: span attributes naming an
    uninstrumented peer, first found wins; empty: no virtual nodes.

    ``database_name_attributes``: span or resource attributes naming the
    database a client span calls, first found wins.

    ``metrics_flush_interval``: how often the metrics are sent on; 0: after
    every batch.
    """
    latency_histogram_buckets: list[Duration] = field(
        default_factory=lambda: [Duration(b) for b in DEFAULT_BOUNDS])
    store: StoreConfig = field(default_factory=StoreConfig)
    store_expiration_loop: Duration = Duration(2.0)
    virtual_node_peer_attributes: list[str] = field(
        default_factory=lambda: list(DEFAULT_PEER_ATTRIBUTES))
    database_name_attributes: list[str] = field(
        default_factory=lambda: ["db.name", "db.system.name"])
    metrics_flush_interval: Duration = Duration(60.0)

    def validate(self):
        errs = []
        b = list(self.latency_histogram_buckets)
        if any(y <= x for x, y in zip(b, b[1:])):
            errs.append((("latency_histogram_buckets",), "must be strictly increasing"))
        if self.store_expiration_loop <= 0:
            errs.append((("store_expiration_loop",), "must be positive"))
        if self.metrics_flush_interval < 0:
            errs.append((("metrics_flush_interval",), "must not be negative"))
        return errs


class ServiceGraph(Consumer):
    def __init__(self, settings, config: ServiceGraphConfig, next_consumer):
        self.id = str(settings.id)
        self.config = config
        self.next = next_consumer
        self.clock = settings.extra.get("clock", time.monotonic)
        self.store = EdgeStore(float(config.store.ttl), config.store.max_items)
        self.series = GraphSeries([float(b) for b in config.latency_histogram_buckets])
        self.start_ns = time.time_ns()
        self._resources = ResourceAttributes()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        tel = settings.telemetry
        lab = ("connector",)
        self.m_edges = tel.counter("connector_servicegraph_total_edges",
                                   "Request sides that opened a new edge", lab)
        self.m_expired = tel.counter("connector_servicegraph_expired_edges",
                                     "Edges that expired before their other side arrived", lab)
        self.m_dropped = tel.counter("connector_servicegraph_dropped_spans",
                                     "Spans dropped because the edge store was full", lab)
        self._counted = (0, 0, 0)

    # -- consuming ------------------------------------------------------------------
    def _resource(self, key: int, defs) -> dict:
        return self._resources.get(defs, key)

    def _side_spans(self, records) -> SideSpans:
        cols = records.cached("span_columns", codec.decode_span_columns)
        keep = np.flatnonzero((cols.kind >= 2) & (cols.kind <= 5))
        rkeys = cols.resource_key[keep].tolist()
        service = np.array([self._resource(k, records.defs).get("service.name") for k in rkeys],
                           dtype=object)
        db = np.full(len(keep), None, dtype=object)
        peer = np.full(len(keep), None, dtype=object)
        # only client/producer spans are read beyond their fixed prefix
        kinds = cols.kind[keep]
        for j in np.flatnonzero((kinds == KIND_CLIENT) | (kinds == KIND_PRODUCER)).tolist():
            attrs = cols.span(int(keep[j])).attributes
            res = self._resource(rkeys[j], records.defs)
            if kinds[j] == KIND_CLIENT:
                db[j] = _first(self.config.database_name_attributes, attrs, res)
            peer[j] = _first(self.config.virtual_node_peer_attributes, attrs)
        start = cols.start_time_unix_nano[keep].astype(np.int64)
        end = cols.end_time_unix_nano[keep].astype(np.int64)
        return SideSpans(cols.trace_id[keep], cols.span_id[keep], cols.parent_span_id[keep],
                         kinds, cols.status_code[keep] == 2,
                         np.maximum(end - start, 0) / 1e9, service, db, peer)

    def consume(self, records) -> None:
        try:
            spans = self._side_spans(records)
            with self._lock:
                self.series.add(self.store.add(spans, self.clock()))
                self._count()
        finally:
            records.settle()   # counted: this connector is done with the spans
        if float(self.config.metrics_flush_interval) == 0:
            self.flush()

    def expire(self) -> None:
        with self._lock:
            self.series.add(self.store.expire(self.clock(), bool(
                self.config.virtual_node_peer_attributes)))
            self._count()

    def _count(self) -> None:
        s = self.store
        now = (s.total_edges, s.expired_edges, sum(s.dropped.values()))
        lab = {"connector": self.id}
        for metric, new, old in zip((self.m_edges, self.m_expired, self.m_dropped), now,
                                    self._counted):
            if new > old:
                metric.add(new - old, **lab)
        self._counted = now

    # -- emitting ---------------------------------------------------------------------
    def flush(self):
        with self._lock:
            rs = series_records(self.series, self.store, self.start_ns, time.time_ns())
        if rs is not None:
            self.next.consume(rs)
        return rs

    # -- lifecycle ----------------------------------------------------------------------
    def _loop(self, interval: float, fn, what: str) -> None:
        while not self._stop.wait(interval):
            try:
                fn()
            except Exception:
                log.exception("connector %s: %s failed", self.id, what)

    def start(self, host) -> None:
        loops = [(float(self.config.store_expiration_loop), self.expire, "expiring edges")]
        if float(self.config.metrics_flush_interval) > 0:
            loops.append((float(self.config.metrics_flush_interval), self.flush,
                          "flushing metrics"))
        for interval, fn, what in loops:
            t = threading.Thread(target=self._loop, args=(interval, fn, what),
                                 name=f"{self.id}-{fn.__name__}", daemon=True)
            t.start()
            self._threads.append(t)

    def shutdown(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        try:
            self.flush()
        except Exception:
            log.exception("connector %s: final flush failed", self.id)


def _first(keys, *maps):
    for k in keys:
        for m in maps:
            v = m.get(k)
            if v is not None and v != "":
                return str(v)
    return None


factory = Factory("servicegraph", Kind.CONNECTOR, ServiceGraphConfig, ServiceGraph,
                  connects=(("traces", "metrics"),))
