"""jaeger: spans to Jaeger.

``protocol``:
- ``otlp_http`` (default; Jaeger v2 and Jaeger >= 1.35 take OTLP) and
  ``otlp_grpc``: the OTLP exporters' own send path;
- ``thrift_http``: ``POST <endpoint>`` (``/api/traces`` on the collector's
  port 14268) with a Thrift binary ``jaeger.Batch`` per resource;
- ``thrift_compact``: UDP datagrams to the agent (port 6831), each an
  ``Agent.emitBatch`` oneway message in Thrift compact, with the spans of a
  resource split so that no datagram exceeds ``max_packet_size``.  A span
  too large for a datagram on its own is dropped and counted.

The Thrift encoding is written here (thrift.py), from the IDL in
jaeger-idl (jaeger.thrift, agent.thrift); the mapping is in translate.py.
"""
from __future__ import annotations

import itertools
import logging
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Literal

from ...component import CreateSettings, Factory, Kind
from ...helpers.exporter import (Exporter, ExporterSettingsMixin, QueueConfig,
                                RetryConfig, Retryable)
from ...helpers.http_client import KeepAliveClient
from ...telemetry import Telemetry
from ...config.transport import TLSClientConfig, endpoint_errors, split_endpoint
from ..otlp import OTLPGrpcConfig, OTLPGrpcExporter, OTLPHttpConfig, OTLPHttpExporter
from . import thrift, translate

log = logging.getLogger("otelplug.sidecar")

DEFAULT_ENDPOINTS = {
    "otlp_http": "http://127.0.0.1:4318",
    "otlp_grpc": "127.0.0.1:4317",
    "thrift_http": "http://127.0.0.1:14268/api/traces",
    "thrift_compact": "127.0.0.1:6831",
}
MAX_UDP_PAYLOAD = 65507   # IPv4: 65535 - 20 (IP) - 8 (UDP)


@dataclass
class JaegerConfig(ExporterSettingsMixin):
    """``protocol``: OTLP (what Jaeger prefers), or Jaeger's Thrift over HTTP
    or compact Thrift over UDP.

    ``headers``: HTTP headers or gRPC metadata sent with every request.

    ``tls``: TLS towards Jaeger (otlp_* protocols).
    """
    protocol: Literal["otlp_http", "otlp_grpc", "thrift_http", "thrift_compact"] = "otlp_http"
    endpoint: str = ""                 # "" -> the protocol's default (DEFAULT_ENDPOINTS)
    headers: dict[str, str] = field(default_factory=dict)
    compression: Literal["gzip", "none", ""] = "gzip"    # otlp_* only
    tls: TLSClientConfig = field(default_factory=TLSClientConfig)
    max_packet_size: int = 65000       # thrift_compact: bytes per datagram

    def resolved_endpoint(self) -> str:
        return self.endpoint or DEFAULT_ENDPOINTS[self.protocol]

    def validate(self):
        errs = []
        ep = self.resolved_endpoint()
        if self.protocol in ("otlp_http", "thrift_http"):
            if urllib.parse.urlsplit(ep).scheme not in ("http", "https"):
                errs.append((("endpoint",), f"must be an http:// or https:// URL for "
                             f"protocol {self.protocol}, got {ep!r}"))
        else:
            errs += [(path, f"{message} (protocol {self.protocol})")
                     for path, message in endpoint_errors(ep.split("://", 1)[-1])]
        if self.protocol == "thrift_compact" and not 512 <= self.max_packet_size <= MAX_UDP_PAYLOAD:
            errs.append((("max_packet_size",), f"must be between 512 and {MAX_UDP_PAYLOAD} "
                         f"(one UDP datagram), got {self.max_packet_size}"))
        return errs


class JaegerExporter(Exporter):
    def __init__(self, settings, config: JaegerConfig):
        super().__init__(settings, config)
        self.protocol = config.protocol
        self.endpoint = config.resolved_endpoint()
        self._seq = itertools.count(1)
        self._inner = None
        self.dropped_too_large = 0
        self.datagrams_sent = 0
        if self.protocol.startswith("otlp"):
            self._inner = self._otlp_exporter(settings, config)
        elif self.protocol == "thrift_http":
            self.url = urllib.parse.urlsplit(self.endpoint)
            self._client = KeepAliveClient(self.endpoint, config.tls)
        else:
            self._addr = split_endpoint(self.endpoint.split("://", 1)[-1])
            self._sock = None

    @staticmethod
    def _otlp_exporter(settings, c: JaegerConfig):
        """An OTLP exporter used only for its send path (its own queue,
        retries and counts stay unused: this exporter has them)."""
        common = dict(endpoint=c.resolved_endpoint(), headers=c.headers,
                      compression=c.compression, tls=c.tls, timeout=c.timeout,
                      sending_queue=QueueConfig(enabled=False),
                      retry_on_failure=RetryConfig(enabled=False))
        quiet = CreateSettings(settings.id, settings.kind, "traces", Telemetry(), settings.host)
        if c.protocol == "otlp_grpc":
            return OTLPGrpcExporter(quiet, OTLPGrpcConfig(**common))
        return OTLPHttpExporter(quiet, OTLPHttpConfig(**common))

    # -- lifecycle -------------------------------------------------------------
    def start(self, host) -> None:
        if self._inner is not None:
            self._inner.start(host)
        elif self.protocol == "thrift_compact":
            family = socket.AF_INET6 if ":" in self._addr[0] else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
        super().start(host)

    def shutdown(self, drain_timeout: float = 5.0) -> None:
        super().shutdown(drain_timeout)
        if self._inner is not None:
            self._inner.shutdown(0)
        if getattr(self, "_sock", None) is not None:
            self._sock.close()
            self._sock = None

    # -- sending ---------------------------------------------------------------
    def send(self, records, timeout: float) -> None:
        if self._inner is not None:
            self._inner.send(records, timeout)
        elif self.protocol == "thrift_http":
            for proc, spans in translate.batches(records):
                body = thrift.encode_struct(translate.batch_struct(proc, spans, next(self._seq)),
                                            "binary")
                self._post(body, timeout)
        else:
            for proc, spans in translate.batches(records):
                for datagram in self.datagrams(proc, spans):
                    try:
                        self._sock.sendto(datagram, self._addr)
                    except OSError as exc:
                        raise Retryable(f"UDP send to {self._addr}: {exc}") from None
                    self.datagrams_sent += 1

    def datagrams(self, proc, spans):
        """``Agent.emitBatch`` messages of at most ``max_packet_size`` bytes
        holding ``spans`` in order (spans too large alone are dropped)."""
        limit = self.config.max_packet_size
        encoded = [thrift.encode_struct(s, "compact") for s in spans]
        proc_bytes = thrift.encode_struct(proc, "compact")
        seq = next(self._seq)
        # overhead of a message with no spans, plus room for the list size
        # varint (5 bytes) and a seqNo that grows to a 10-byte varint
        overhead = len(self._emit(proc_bytes, [], seq)) + 5 + 10
        group, size = [], overhead
        for b in encoded:
            if overhead + len(b) > limit:
                self.dropped_too_large += 1
                log.warning("exporter %s: a span of %d bytes does not fit a %d-byte datagram; "
                            "dropped", self.id, len(b), limit)
                continue
            if size + len(b) > limit and group:
                yield self._emit(proc_bytes, group, seq)
                seq = next(self._seq)
                group, size = [], overhead
            group.append(b)
            size += len(b)
        if group:
            yield self._emit(proc_bytes, group, seq)

    @staticmethod
    def _emit(proc_bytes, spans, seq) -> bytes:
        w = thrift.CompactWriter().message_begin("emitBatch", thrift.ONEWAY, seq)
        w.struct(((1, thrift.STRUCT, translate.batch_struct(proc_bytes, spans, seq)),))
        return bytes(w.buf)

    def _post(self, body: bytes, timeout: float) -> None:
        path = self.url.path or "/api/traces"
        if self.url.query:
            path += "?" + self.url.query
        headers = {"Content-Type": "application/x-thrift", "User-Agent": "otelplug",
                   **self.config.headers}
        self._client.export(path, body, headers, timeout)


factory = Factory("jaeger", Kind.EXPORTER, JaegerConfig, JaegerExporter, signals=("traces",))
