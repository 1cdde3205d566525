"""otlp: the Collector's OTLP receiver, over gRPC and HTTP.

Config shape as in the Collector::

    receivers:
      otlp:
        protocols:
          grpc:                      # present (even empty): enabled
            endpoint: 127.0.0.1:4317
          http:
            endpoint: 127.0.0.1:4318

Unlike the Collector's ``localhost`` (and older ``0.0.0.0``), the defaults
listen on 127.0.0.1 only: exposing the port is a deliberate choice.

Every request is decoded into a RecordSet and handed to the pipelines.  By
default (``ack: accepted``) the response means "accepted into the
pipeline", not "exported" (as in the Collector): a sidecar killed before
the data reached a persistent queue or the destination loses it.  With
``ack: durable`` the response waits until every pipeline has the data in
a persistent sending queue or delivered (or dropped it on purpose, e.g.
sampling); if that fails or takes longer than ``durable_timeout``, the
client gets a retryable error (503 / UNAVAILABLE) and sends again
(at-least-once).  Transports map outcomes the same way: invalid payload ->
INVALID_ARGUMENT / 400, pipeline refused (memory_limiter) -> UNAVAILABLE /
503 so the client retries, anything else -> INTERNAL / 500.  The transports
live in ``otlp_grpc.py`` and ``otlp_http.py``.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Literal

from otelplug.otlp.protocol import GRPC_SERVICES, HTTP_PATHS

from ..ack import Ack
from ..component import SIGNALS, Factory, Kind
from ..config.decode import Duration
from ..config.transport import TLSServerConfig, endpoint_errors
from ..consumer import Refused
from ..signals import ITEM_WORD

log = logging.getLogger("otelplug.sidecar")

MIB = 1 << 20
# what decoding a request costs besides its body, per decompressed byte:
# the parsed protobuf (~3.6x) and the RecordSet and its columns (~2.6x),
# measured on an 18 MiB body of spans with 8 attributes each.  Receivers
# reserve it (memory.HELD) before parsing.
REQUEST_DECODE_COST = 6


# signal -> (gRPC service, request message, response message)
def messages(signal: str):
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as lg
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as mt
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as tr
    return {
        "traces": (GRPC_SERVICES["traces"], tr.ExportTraceServiceRequest,
                   tr.ExportTraceServiceResponse),
        "metrics": (GRPC_SERVICES["metrics"], mt.ExportMetricsServiceRequest,
                    mt.ExportMetricsServiceResponse),
        "logs": (GRPC_SERVICES["logs"], lg.ExportLogsServiceRequest,
                 lg.ExportLogsServiceResponse),
    }[signal]


@dataclass
class GRPCServerConfig:
    """``endpoint``: ``host:port`` the OTLP/gRPC server listens on.

    ``tls``: serve TLS; none: plain text.
    """
    endpoint: str = "127.0.0.1:4317"
    max_recv_msg_size_mib: int = 4          # decompressed message size limit
    max_concurrent_streams: int = 0         # per connection; 0: gRPC's default
    tls: TLSServerConfig | None = None

    def validate(self):
        errs = endpoint_errors(self.endpoint)
        if self.max_recv_msg_size_mib < 1:
            errs.append((("max_recv_msg_size_mib",), "must be at least 1"))
        if self.max_concurrent_streams < 0:
            errs.append((("max_concurrent_streams",), "must not be negative"))
        return errs


@dataclass
class HTTPServerConfig:
    """``endpoint``: ``host:port`` the OTLP/HTTP server listens on.

    ``traces_url_path``: the path traces are posted to.

    ``metrics_url_path``: the path metrics are posted to.

    ``logs_url_path``: the path logs are posted to.

    ``max_in_flight_bytes``: memory all requests being read and decoded may
    use together; beyond it (or memory_limiter's limit) requests get a 503.

    ``tls``: serve TLS (HTTPS); none: plain HTTP.
    """
    endpoint: str = "127.0.0.1:4318"
    traces_url_path: str = HTTP_PATHS["traces"]
    metrics_url_path: str = HTTP_PATHS["metrics"]
    logs_url_path: str = HTTP_PATHS["logs"]
    max_request_body_size: int = 20 * MIB   # bytes, as sent and after decompression
    # bytes all requests being read and decoded may use together (each is
    # counted as its body plus REQUEST_DECODE_COST x its decompressed size);
    # beyond it, and beyond memory_limiter's limit, requests get a 503
    max_in_flight_bytes: int = 256 * MIB
    idle_timeout: Duration = Duration(60.0)  # also bounds each read of a slow client
    tls: TLSServerConfig | None = None

    def __post_init__(self):
        # the Collector prefixes a missing leading slash rather than failing
        for name in ("traces_url_path", "metrics_url_path", "logs_url_path"):
            p = getattr(self, name)
            if p and not p.startswith("/"):
                setattr(self, name, "/" + p)

    def url_paths(self) -> dict[str, str]:
        return {"traces": self.traces_url_path, "metrics": self.metrics_url_path,
                "logs": self.logs_url_path}

    def validate(self):
        errs = endpoint_errors(self.endpoint)
        seen = {}
        for signal, path in self.url_paths().items():
            key = f"{signal}_url_path"
            if not path:
                errs.append(((key,), "must not be empty"))
            elif path in seen:
                errs.append(((key,), f"{path!r} is also the {seen[path]}_url_path"))
            seen.setdefault(path, signal)
        if self.max_request_body_size < 1:
            errs.append((("max_request_body_size",), "must be at least 1 byte"))
        if self.max_in_flight_bytes < 1:
            errs.append((("max_in_flight_bytes",), "must be at least 1 byte"))
        if self.idle_timeout <= 0:
            errs.append((("idle_timeout",), "must be positive"))
        return errs


@dataclass
class ProtocolsConfig:
    """``grpc``: OTLP/gRPC; present (even empty) enables it.

    ``http``: OTLP/HTTP (protobuf or JSON); present (even empty) enables it.
    """
    # Annotated without ``| None`` on purpose: the config decoder turns a
    # present-but-empty key (``grpc:``) into a default config, which is how
    # the Collector enables a protocol; an absent key keeps None (disabled).
    grpc: GRPCServerConfig = None
    http: HTTPServerConfig = None


@dataclass
class OTLPReceiverConfig:
    """``protocols``: the transports served.

    ``ack``: when a request is answered: accepted into the pipeline (the
    Collector's behaviour), or durable: in a persistent queue or delivered.

    ``durable_timeout``: with ack durable, the longest wait before the client
    is told to retry.
    """
    protocols: ProtocolsConfig = field(default_factory=ProtocolsConfig)
    # when a request is answered: "accepted" into the pipeline (the
    # Collector's behaviour), or "durable": in a persistent queue or delivered
    ack: Literal["accepted", "durable"] = "accepted"
    durable_timeout: Duration = Duration(30.0)

    def validate(self):
        if self.durable_timeout <= 0:
            return [(("durable_timeout",), "must be positive")]
        p = self.protocols
        if p.grpc is None and p.http is None:
            return [(("protocols",), "must specify at least one protocol when using the OTLP receiver")]
        if p.grpc is not None and p.http is not None and p.grpc.endpoint == p.http.endpoint \
                and not p.grpc.endpoint.endswith(":0"):
            return [(("protocols",), f"grpc and http cannot both listen on {p.grpc.endpoint}")]
        return []


class Ingest:
    """What both transports do with a parsed Export*ServiceRequest: decode
    it, hand it to the signal's pipelines, count the outcome.

    Returns the Export*ServiceResponse to send.  Raises ValueError
    (``InvalidRequest``) for payloads that are not valid OTLP, ``Refused``
    when the pipeline pushes back, anything else for pipeline failures; the
    transport turns those into status codes.

    Metrics otelplug cannot carry (summaries) do not fail the request: the
    rest goes on and the response reports them as a partial success, which
    OTLP clients log and do not retry.
    """

    def __init__(self, receiver_id: str, consumers: dict, telemetry, durable_timeout: float = 0.0):
        from otelplug.otlp.decode import DECODE_FOR
        self.receiver_id = receiver_id
        self.consumers = consumers
        self.durable_timeout = durable_timeout    # 0: answer once accepted
        self._decode = DECODE_FOR
        lab = ("receiver", "transport")
        self._accepted = {s: telemetry.counter(f"receiver_accepted_{w}", f"{w} accepted by the receiver", lab)
                          for s, w in ITEM_WORD.items()}
        self._refused = {s: telemetry.counter(f"receiver_refused_{w}", f"{w} refused by the pipeline", lab)
                         for s, w in ITEM_WORD.items()}
        self._rejected = telemetry.counter(
            "receiver_rejected_metric_points",
            "metric_points left out of an accepted request because otelplug cannot carry them "
            "(summary metrics); reported to the client as a partial success", lab)
        # not a Collector metric: without it, clients sending garbage are invisible
        self._invalid = telemetry.counter("receiver_invalid_requests",
                                          "Requests rejected before reaching the pipeline "
                                          "(undecodable, invalid OTLP, too large)", lab)

    def accepts(self, signal: str) -> bool:
        return signal in self.consumers

    def invalid(self, transport: str) -> None:
        self._invalid.add(1, receiver=self.receiver_id, transport=transport)

    def export(self, signal: str, request, transport: str):
        _, _, response_cls = messages(signal)
        response = response_cls()
        rejected: list = []
        try:
            if signal == "metrics":
                records = self._decode[signal](request, rejected)
            else:
                records = self._decode[signal](request)
        except ValueError:
            self.invalid(transport)
            raise
        except Exception as exc:
            # the payload parsed but something in it broke the conversion:
            # still the request's doing, so the client gets 400, not a retry
            log.warning("%s: could not convert an OTLP %s request", self.receiver_id, signal,
                        exc_info=True)
            self.invalid(transport)
            raise ValueError(f"could not convert the request: {type(exc).__name__}: {exc}") from None
        lab = {"receiver": self.receiver_id, "transport": transport}
        if rejected:
            points = sum(n for n, _ in rejected)
            self._rejected.add(points, **lab)
            response.partial_success.rejected_data_points = points
            reasons = "; ".join(why for _, why in rejected[:5])
            more = f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else ""
            response.partial_success.error_message = reasons + more
        if records.items == 0:
            return response  # as the Collector: nothing to hand on, still a success
        safe = threading.Event()
        ack = Ack(lambda a: safe.set())   # the receiver's own share ...
        ack.hold()                          # ... and the pipeline's
        records = records.with_acks((ack,))
        try:
            self.consumers[signal].consume(records)
        except Refused:
            self._refused[signal].add(records.items, **lab)
            raise
        except Exception:
            log.exception("%s: pipeline failed on %d %s", self.receiver_id, records.items,
                          ITEM_WORD[signal])
            self._refused[signal].add(records.items, **lab)
            raise
        finally:
            ack.settle()      # the receiver's share: it does not keep the data
        if self.durable_timeout:
            self._wait_durable(signal, records.items, safe, ack, lab)
        self._accepted[signal].add(records.items, **lab)
        return response

    def _wait_durable(self, signal, items, safe: threading.Event, ack: Ack, lab) -> None:
        """``ack: durable``: answer only once every holder settled its share
        (persistent queue, destination, or a deliberate drop)."""
        if not safe.wait(self.durable_timeout):
            self._refused[signal].add(items, **lab)
            raise Refused(f"the data was not stored within {self.durable_timeout:g}s; "
                          "send it again")
        if ack.failed:
            self._refused[signal].add(items, **lab)
            raise Refused("the data could not be stored or delivered; send it again")


class OTLPReceiver:
    def __init__(self, settings, config: OTLPReceiverConfig, consumers: dict):
        self.id = str(settings.id)
        self.config = config
        self.consumers = {s: c for s, c in consumers.items() if s in SIGNALS}
        self.ingest = Ingest(self.id, self.consumers, settings.telemetry,
                             float(config.durable_timeout) if config.ack == "durable" else 0.0)
        self._grpc = None
        self._http = None

    @property
    def grpc_address(self) -> str | None:
        """host:port the gRPC server listens on (the real port when 0 was asked)."""
        return self._grpc.address if self._grpc else None

    @property
    def http_address(self) -> str | None:
        return self._http.address if self._http else None

    def claims(self) -> list[str]:
        """What it holds exclusively while running (see Service.claims)."""
        p = self.config.protocols
        return [f"tcp {s.endpoint}" for s in (p.grpc, p.http) if s is not None]

    def start(self, host) -> None:
        p = self.config.protocols
        try:
            if p.grpc is not None:
                from .otlp_grpc import GRPCServer
                self._grpc = GRPCServer(p.grpc, self.ingest, self.id)
                self._grpc.start()
            if p.http is not None:
                from .otlp_http import HTTPServer
                self._http = HTTPServer(p.http, self.ingest, self.id)
                self._http.start()
        except Exception:
            self.shutdown()   # don't leave one protocol listening when the other failed
            raise

    def shutdown(self) -> None:
        # stop taking requests, let the ones in flight reach the pipeline
        for server in (self._grpc, self._http):
            if server is not None:
                try:
                    server.shutdown()
                except Exception:
                    log.exception("%s: error stopping a server", self.id)


factory = Factory("otlp", Kind.RECEIVER, OTLPReceiverConfig, OTLPReceiver)
