"""loadbalancing: the Collector's loadbalancing exporter for traces.

Spans are routed by trace id (``routing_key: traceID``, the default) or by
their resource's ``service.name`` (``service``) over the Collector's
consistent hash ring (``ring.py``), so a trace's spans all reach one
backend -- the same one a Collector with the same backends picks -- and a
backend joining or leaving moves only about 1/n of the traces.  Each
backend gets its own OTLP/gRPC exporter (``protocol::otlp``, the otlp
exporter's options without an endpoint: queue, retry, TLS ...).

Backends come from ``resolver::static::hostnames`` or
``resolver::dns::hostname`` (re-resolved every ``interval``; a failed
lookup keeps the last backends).  A batch is split with a numpy mask per
backend, no copy; its acks are held once more per extra backend so each
part settles its share.  With no backend at all, spans are dropped and
counted (``loadbalancer_no_backend_spans``).
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import zlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from otelplug import codec

from ...ack import hold_all
from ...component import ComponentID, CreateSettings, Factory, Kind
from ...config.decode import Duration
from ...consumer import Consumer, Refused
from ...sampling.attributes import ResourceAttributes
from ..otlp import OTLPGrpcConfig, factories as otlp_factories
from .resolver import DNSResolver, lookup, with_port
from .ring import HashRing

log = logging.getLogger("otelplug.sidecar")


@dataclass
class BackendOTLPConfig(OTLPGrpcConfig):
    """The otlp exporter's options for every backend; ``endpoint`` is the
    backend's and must not be set here."""

    def validate(self):
        if self.endpoint:
            return [(("endpoint",), "is set per backend by the resolver: leave it out")]
        return []


@dataclass
class ProtocolConfig:
    """``otlp``: how each backend is sent to (OTLP/gRPC)."""
    otlp: BackendOTLPConfig = field(default_factory=BackendOTLPConfig)


@dataclass
class StaticResolverConfig:
    """``hostnames``: the backends, ``host`` or ``host:port`` (port 4317 by default)."""
    hostnames: list[str] = field(default_factory=list)

    def validate(self):
        return [] if self.hostnames else [(("hostnames",), "must list at least one backend")]


@dataclass
class DNSResolverConfig:
    """``hostname``: the name whose addresses are the backends.

    ``port``: the backends' OTLP/gRPC port; unset: addresses alone in the
    ring (as the Collector), connected to on port 4317.

    ``interval``: how often the name is resolved again.

    ``timeout``: how long one lookup may take.
    """
    hostname: str = ""
    port: int | None = None
    interval: Duration = Duration(5.0)
    timeout: Duration = Duration(1.0)

    def validate(self):
        errs = []
        if not self.hostname:
            errs.append((("hostname",), "must be set"))
        if self.port is not None and not 0 < self.port < 65536:
            errs.append((("port",), "must be a TCP port (1-65535)"))
        if self.interval <= 0:
            errs.append((("interval",), "must be positive"))
        return errs


@dataclass
class ResolverConfig:
    """Exactly one of:

    ``static``: a fixed list of backends.

    ``dns``: the addresses a DNS name resolves to, looked up again and again.
    """
    static: StaticResolverConfig | None = None
    dns: DNSResolverConfig | None = None


@dataclass
class LoadBalancingConfig:
    """``routing_key``: what keeps spans together on one backend: the trace
    id, or the resource's service.name.

    ``protocol``: how backends are sent to.

    ``resolver``: where the backends are.
    """
    routing_key: Literal["traceID", "service"] = "traceID"
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    resolver: ResolverConfig = field(default_factory=ResolverConfig)

    def validate(self):
        # here, not on ResolverConfig: a config without a resolver section
        # must fail too
        if (self.resolver.static is None) == (self.resolver.dns is None):
            return [(("resolver",), "exactly one of static or dns must be configured")]
        return []


_OTLP = next(f for f in otlp_factories if f.type == "otlp_grpc")


class LoadBalancingExporter(Consumer):
    def __init__(self, settings, config: LoadBalancingConfig):
        self.settings, self.config = settings, config
        self.id = str(settings.id)
        self.ring = HashRing([])
        self.backends: dict[str, Consumer] = {}
        self._lock = threading.Lock()
        self._host = None
        self._resources = ResourceAttributes()
        tel = settings.telemetry
        lab = ("exporter",)
        self.m_resolutions = tel.counter("loadbalancer_num_resolutions",
                                         "Backend resolutions, by outcome", lab + ("success",))
        self.m_updates = tel.counter("loadbalancer_num_backend_updates",
                                     "Times the set of backends changed", lab)
        self.g_backends = tel.gauge("loadbalancer_num_backends", "Backends in use", lab)
        self.m_no_backend = tel.counter("loadbalancer_no_backend_spans",
                                        "Spans dropped because no backend was known", lab)
        self.m_refused = tel.counter("loadbalancer_refused_spans",
                                     "Spans a backend's sending queue refused", lab)
        dns = config.resolver.dns
        self._resolver = None
        if dns is not None:
            self._resolver = DNSResolver(dns.hostname, dns.port, float(dns.interval),
                                         float(dns.timeout), self.set_backends, self._resolved,
                                         settings.extra.get("resolve", lookup))

    # -- membership ---------------------------------------------------------------
    def _resolved(self, ok: bool) -> None:
        self.m_resolutions.add(1, exporter=self.id, success=str(ok).lower())

    def _backend(self, name: str):
        # the ring hashes names as resolved; the connection needs a port
        endpoint = with_port(name)
        cfg = dataclasses.replace(self.config.protocol.otlp, endpoint=endpoint)
        st = CreateSettings(ComponentID(self.settings.id.type,
                                        f"{self.settings.id.name or 'default'}[{endpoint}]"),
                            Kind.EXPORTER, self.settings.signal, self.settings.telemetry,
                            self._host)
        exp = _OTLP.create(st, cfg)
        exp.start(self._host)
        return exp

    def set_backends(self, endpoints) -> None:
        """Route over ``endpoints`` from now on; backends that left are
        drained and stopped."""
        ring = HashRing(endpoints)
        with self._lock:
            if ring == self.ring:
                return
            old = self.backends
            new = {e: old.get(e) or self._backend(e) for e in ring.endpoints}
            self.ring, self.backends = ring, new
        self.m_updates.add(1, exporter=self.id)
        self.g_backends.set(len(ring), exporter=self.id)
        log.info("exporter %s: backends %s", self.id, ", ".join(ring.endpoints) or "(none)")
        for e, exp in old.items():
            if e not in new:
                exp.shutdown()

    # -- routing ----------------------------------------------------------------------
    def _service_hash(self, key: int, defs) -> int:
        return zlib.crc32(str(self._resources.get(defs, key).get("service.name", "")).encode())

    def route(self, records, ring: HashRing) -> np.ndarray:
        """Backend index (into ``ring.endpoints``) of every record."""
        cols = records.cached("span_columns", codec.decode_span_columns)
        if self.config.routing_key == "service":
            keys, inv = np.unique(cols.resource_key, return_inverse=True)
            hashes = np.array([self._service_hash(int(k), records.defs) for k in keys.tolist()],
                              np.int64)
            return ring.index_of_hashes(hashes)[inv.ravel()]
        return ring.route_trace_ids(cols.trace_id)

    def consume(self, records) -> None:
        with self._lock:
            # held while dispatching, so a backend is not stopped under a batch
            ring, backends = self.ring, self.backends
            if not len(ring):
                self.m_no_backend.add(records.items, exporter=self.id)
                records.settle(ok=False)
                return
            idx = self.route(records, ring)
            targets = np.unique(idx).tolist()
            if len(targets) > 1:
                hold_all(records.acks, len(targets) - 1)
            for t in targets:
                part = records.select(idx == t) if len(targets) > 1 else records
                try:
                    backends[ring.endpoints[t]].consume(part)
                except Refused:
                    self.m_refused.add(len(part), exporter=self.id)
                    part.settle(ok=False)

    # -- lifecycle ------------------------------------------------------------------
    def start(self, host) -> None:
        self._host = host
        static = self.config.resolver.static
        if static is not None:
            self.set_backends(list(static.hostnames))
            self._resolved(True)
        else:
            self._resolver.start()

    def shutdown(self) -> None:
        if self._resolver is not None:
            self._resolver.stop()
        with self._lock:
            backends, self.backends, self.ring = self.backends, {}, HashRing([])
        for exp in backends.values():
            exp.shutdown()


factory = Factory("loadbalancing", Kind.EXPORTER, LoadBalancingConfig, LoadBalancingExporter,
                  signals=("traces",))
