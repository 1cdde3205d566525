"""OTLP/gRPC transport of the otlp receiver.

Generic method handlers for the three Export services, registered only for
the signals some pipeline takes: the others answer UNIMPLEMENTED, as in the
Collector.  Requests arrive as raw bytes and are parsed here, so a payload
that is not protobuf gets INVALID_ARGUMENT with the reason (a failing
``request_deserializer`` would give a bare INTERNAL).  gRPC itself handles
gzip and the message size limit (RESOURCE_EXHAUSTED).
"""
from __future__ import annotations

import logging
from concurrent import futures

import grpc
from google.protobuf.message import DecodeError

from ..consumer import Refused
from ..config.transport import join_endpoint, split_endpoint
from ..memory import HELD, RECEIVER
from .otlp import REQUEST_DECODE_COST, GRPCServerConfig, Ingest, MIB, messages

log = logging.getLogger("otelplug.sidecar")

_WORKERS = 16           # concurrent Export calls; more wait in gRPC's queue
_SHUTDOWN_GRACE = 5.0   # seconds in-flight calls get to finish


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class GRPCServer:
    def __init__(self, config: GRPCServerConfig, ingest: Ingest, receiver_id: str):
        self.config = config
        self.ingest = ingest
        self.receiver_id = receiver_id
        self.address = None
        self._server = None

    def _export_handler(self, signal: str):
        _, request_cls, _ = messages(signal)
        ingest = self.ingest

        holder = f"{RECEIVER}{self.receiver_id}/grpc"

        def export(body: bytes, context):
            # gRPC has read the message (at most max_recv_msg_size_mib);
            # reserve what decoding it will take before doing so
            cost = len(body) * (1 + REQUEST_DECODE_COST)
            if not HELD.try_reserve(holder, cost):
                context.abort(grpc.StatusCode.UNAVAILABLE,
                              "the sidecar is holding as much data as it may; retry later")
            try:
                return _export(body, context)
            finally:
                HELD.sub(holder, cost)

        def _export(body: bytes, context):
            code, why = None, ""
            try:
                request = request_cls.FromString(body)
                response = ingest.export(signal, request, "grpc")
            except DecodeError as exc:
                ingest.invalid("grpc")
                code, why = grpc.StatusCode.INVALID_ARGUMENT, f"invalid protobuf: {exc}"
            except ValueError as exc:                   # InvalidRequest: valid protobuf, invalid OTLP
                code, why = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
            except Refused as exc:
                # retryable, like the Collector's answer for memory_limiter refusals
                code, why = grpc.StatusCode.UNAVAILABLE, str(exc) or "data refused, retry later"
            except Exception as exc:                    # logged by Ingest
                code, why = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
            if code is not None:
                context.abort(code, why)                # raises
            return response.SerializeToString()

        return export

    def start(self) -> None:
        c = self.config
        host, port = split_endpoint(c.endpoint)
        options = [("grpc.max_receive_message_length", c.max_recv_msg_size_mib * MIB),
                   # otherwise gRPC sets SO_REUSEPORT and a second server on
                   # the same port "succeeds" and steals half the connections
                   ("grpc.so_reuseport", 0)]
        if c.max_concurrent_streams:
            options.append(("grpc.max_concurrent_streams", c.max_concurrent_streams))
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=_WORKERS,
                                                        thread_name_prefix=f"{self.receiver_id}-grpc"),
                             options=options)
        for signal in self.ingest.consumers:
            service, _, _ = messages(signal)
            handler = grpc.unary_unary_rpc_method_handler(self._export_handler(signal))
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {"Export": handler}),))
        target = join_endpoint(host, port)
        try:
            if c.tls is not None:
                ca = _read(c.tls.client_ca_file) if c.tls.client_ca_file else None
                creds = grpc.ssl_server_credentials([(_read(c.tls.key_file), _read(c.tls.cert_file))],
                                                    root_certificates=ca, require_client_auth=ca is not None)
                bound = server.add_secure_port(target, creds)
            else:
                bound = server.add_insecure_port(target)
        except RuntimeError as exc:     # grpcio raises this when it cannot bind
            raise OSError(f"{self.receiver_id}: cannot listen for OTLP/gRPC on {c.endpoint}: {exc}") from None
        if not bound:
            raise OSError(f"{self.receiver_id}: cannot listen for OTLP/gRPC on {c.endpoint}")
        server.start()
        self._server = server
        self.address = join_endpoint(host, bound)
        log.info("%s: OTLP/gRPC on %s", self.receiver_id, self.address)

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.stop(_SHUTDOWN_GRACE).wait()
            self._server = None
