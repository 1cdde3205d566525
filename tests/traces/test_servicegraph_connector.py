"""servicegraph connector: real SDK spans of several services as ring
records -> the Collector's service-graph metrics, checked by hand; the
config is refused by path when wrong; started and stopped in a service."""
from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelplug import codec
from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
from otelplug.sidecar.config.decode import decode
from otelplug.sidecar.config.errors import ConfigErrors
from otelplug.sidecar.connectors import servicegraph as sg
from otelplug.sidecar.telemetry import Telemetry
from tests.sidecar.helpers import Capture, records_from_spans

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def tracers(*services):
    mem = InMemorySpanExporter()
    out = []
    for s in services:
        tp = TracerProvider(resource=Resource.create({"service.name": s}))
        tp.add_span_processor(SimpleSpanProcessor(mem))
        out.append(tp.get_tracer("t"))
    return mem, out


def call(tracer, name, kind, parent=None, start=0, dur=1, attrs=None, error=False):
    ctx = trace.set_span_in_context(parent) if parent is not None else None
    s = tracer.start_span(name, context=ctx, kind=kind, attributes=attrs,
                          start_time=T0 + start * MS)
    if error:
        s.set_status(Status(StatusCode.ERROR))
    return s


def end(span, at):
    span.end(end_time=T0 + at * MS)


def connector(config=None):
    clock, cap, tel = Clock(), Capture(), Telemetry()
    cfg = decode(sg.ServiceGraphConfig, {"metrics_flush_interval": "0", **(config or {})})
    st = CreateSettings(ComponentID("servicegraph"), Kind.CONNECTOR, "traces", tel,
                        extra={"clock": clock})
    return sg.factory.create(st, cfg, cap), clock, cap, tel


def points(records):
    out = {}
    for p in records.payloads():
        m = codec.decode_metric(p)
        for pt in m.points:
            out[(m.name, tuple(sorted(pt.attributes.items())))] = pt
    return out


def labels(client, server, conn="", failed=False):
    return tuple(sorted({"client": client, "server": server, "connection_type": conn,
                         "failed": failed}.items()))


def test_edges_from_real_spans_match_hand_counts():
    mem, (web, api, worker) = tracers("web", "api", "worker")
    conn, clock, cap, tel = connector({"latency_histogram_buckets": ["10ms", "100ms"]})
    root = call(web, "GET /", SpanKind.SERVER, start=0)
    for i, (dur, error) in enumerate([(5, False), (50, True), (500, False)]):
        c = call(web, "GET api", SpanKind.CLIENT, root, start=1, error=error)
        s = call(api, "GET /items", SpanKind.SERVER, c, start=2)
        end(s, 2 + dur - 2)
        end(c, 1 + dur)
    db = call(web, "SELECT", SpanKind.CLIENT, root, start=600, attrs={"db.system.name": "postgresql"})
    end(db, 603)
    prod = call(web, "publish", SpanKind.PRODUCER, root, start=610,
                attrs={"messaging.system": "kafka"})
    end(prod, 611)
    cons = call(worker, "process", SpanKind.CONSUMER, prod, start=620)
    end(cons, 700)
    lost = call(web, "GET pay", SpanKind.CLIENT, root, start=701,
                attrs={"server.address": "pay.example"})
    end(lost, 705)
    end(root, 710)
    spans = mem.get_finished_spans()
    # the two sides of a request arrive in different batches, in either order
    conn.consume(records_from_spans(spans[: len(spans) // 2]))
    conn.consume(records_from_spans(spans[len(spans) // 2:]))
    got = points(cap.got[-1])
    assert got[("traces_service_graph_request_total", labels("web", "api"))].value == 2
    assert got[("traces_service_graph_request_total", labels("web", "api", failed=True))].value == 1
    assert got[("traces_service_graph_request_failed_total",
                labels("web", "api", failed=True))].value == 1
    ok = got[("traces_service_graph_request_client", labels("web", "api"))]
    assert list(ok.bucket_counts) == [1, 0, 1] and ok.count == 2
    assert ok.sum == pytest.approx(0.505)
    srv = got[("traces_service_graph_request_server", labels("web", "api"))]
    assert list(srv.bucket_counts) == [1, 0, 1] and srv.sum == pytest.approx(0.501)
    assert got[("traces_service_graph_request_total",
                labels("web", "postgresql", "database"))].value == 1
    assert got[("traces_service_graph_request_total",
                labels("web", "worker", "messaging_system"))].value == 1
    # the root server span and the call to pay.example wait for their
    # other side, then become virtual-node edges
    assert len(conn.store) == 2
    clock.now = 10.0
    conn.expire()
    conn.flush()
    got = points(cap.got[-1])
    assert got[("traces_service_graph_request_total",
                labels("user", "web", "virtual_node"))].value == 1
    assert got[("traces_service_graph_request_total",
                labels("web", "pay.example", "virtual_node"))].value == 1
    assert tel.get("connector_servicegraph_expired_edges").samples()
    conn.shutdown()


def test_unpaired_and_dropped_are_exported():
    mem, (web,) = tracers("web")
    conn, clock, cap, tel = connector({"store": {"max_items": 2}, "virtual_node_peer_attributes": []})
    root = call(web, "GET /", SpanKind.SERVER)
    for i in range(4):
        end(call(web, f"call{i}", SpanKind.CLIENT, root, start=1), 2)
    end(root, 3)
    conn.consume(records_from_spans(mem.get_finished_spans()))
    clock.now = 10.0
    conn.expire()
    got = points(conn.flush())
    # client sides are stored first: two fit, two and the root server side do not
    client_side = (("client", "web"), ("connection_type", ""), ("server", ""))
    server_side = (("client", ""), ("connection_type", ""), ("server", "web"))
    assert got[("traces_service_graph_dropped_spans_total", client_side)].value == 2
    assert got[("traces_service_graph_dropped_spans_total", server_side)].value == 1
    # no peer attributes configured: the two stored client sides expire unpaired
    assert got[("traces_service_graph_unpaired_spans_total", client_side)].value == 2
    dropped = tel.get("connector_servicegraph_dropped_spans").samples()
    assert sum(v for _, v in dropped) == 3


def test_bad_config_is_refused_by_path():
    with pytest.raises(ConfigErrors) as err:
        decode(sg.ServiceGraphConfig, {"store": {"ttl": "0s", "max_items": -1},
                                       "latency_histogram_buckets": ["2s", "1s"],
                                       "dimensions": ["x"]})
    text = str(err.value)
    for path in ("store::ttl", "store::max_items", "latency_histogram_buckets", "dimensions"):
        assert path in text
