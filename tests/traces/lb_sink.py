"""A backend process for the loadbalancing tests: an OTLP/gRPC trace
service on HOST:PORT (port 0: any) built from grpcio and
opentelemetry-proto only.  Prints ``port N`` once listening, then one line
``TRACE_ID_HEX SPANS`` per trace per request it accepted."""
from __future__ import annotations

import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb

_out = threading.Lock()


def export(request, context):
    counts = {}
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                counts[s.trace_id.hex()] = counts.get(s.trace_id.hex(), 0) + 1
    with _out:
        for tid, n in counts.items():
            sys.stdout.write(f"{tid} {n}\n")
        sys.stdout.flush()
    return pb.ExportTraceServiceResponse()


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    server = grpc.server(futures.ThreadPoolExecutor(4), options=[("grpc.so_reuseport", 0)])
    handler = grpc.unary_unary_rpc_method_handler(
        export, request_deserializer=pb.ExportTraceServiceRequest.FromString,
        response_serializer=pb.ExportTraceServiceResponse.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": handler}),))
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    print(f"port {bound}", flush=True)
    sys.stdin.read()          # until the test closes our stdin
    server.stop(0)


if __name__ == "__main__":
    main()
