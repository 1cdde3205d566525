"""loadbalancing exporter: three (then four, then three) backend processes;
every span of a trace reaches the backend the ring names for it, traces
move only to a joining backend or away from a leaving one, nothing is
lost, and each batch's ack settles once."""
from __future__ import annotations

import random
import socket
import time
from collections import defaultdict

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
from otelplug.sidecar.config.decode import decode
from otelplug.sidecar.config.errors import ConfigErrors
from otelplug.sidecar.exporters import loadbalancing as lb
from otelplug.sidecar.exporters.loadbalancing.ring import HashRing
from otelplug.sidecar.telemetry import Telemetry
from tests.sidecar.helpers import counting_ack, records_from_spans
from tests.traces.lb_backends import SinkProcess

def make_traces(n, seed):
    """n traces of 4 spans over 2 services, returned as per-trace span lists."""
    rng = random.Random(seed)
    mem = InMemorySpanExporter()
    tracers = []
    for svc in ("web", "api"):
        tp = TracerProvider(resource=Resource.create({"service.name": svc}))
        tp.add_span_processor(SimpleSpanProcessor(mem))
        tracers.append(tp.get_tracer("t"))
    for _ in range(n):
        root = tracers[0].start_span("GET /", kind=SpanKind.SERVER)
        ctx = trace.set_span_in_context(root)
        for k in range(3):
            tracers[rng.randrange(2)].start_span(f"step{k}", context=ctx).end()
        root.end()
    by_trace = defaultdict(list)
    for s in mem.get_finished_spans():
        by_trace[format(s.context.trace_id, "032x")].append(s)
    return dict(by_trace)


def exporter(config, resolve=None):
    cfg = decode(lb.LoadBalancingConfig, config)
    extra = {"resolve": resolve} if resolve else {}
    st = CreateSettings(ComponentID("loadbalancing"), Kind.EXPORTER, "traces", Telemetry(),
                        extra=extra)
    return lb.factory.create(st, cfg)


def send(exp, spans, batches=3):
    """Send ``spans`` in ``batches`` batches (a trace's spans spread over
    them); returns the acks' settle records."""
    settled_all = []
    random.Random(len(spans)).shuffle(spans)
    for i in range(batches):
        ack, settled = counting_ack()
        exp.consume(records_from_spans(spans[i::batches], acks=(ack,)))
        settled_all.append(settled)
    return settled_all


def wait_for(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def where(sinks):
    """trace -> set of backend endpoints that received spans of it."""
    out = defaultdict(set)
    for s in sinks:
        for tid in s.snapshot():
            out[tid].add(s.endpoint)
    return out


PROTOCOL = {"otlp": {"tls": {"insecure": True}, "timeout": "5s"}}


def test_static_backends_get_whole_traces_where_the_ring_says():
    sinks = [SinkProcess() for _ in range(3)]
    exp = exporter({"protocol": PROTOCOL,
                    "resolver": {"static": {"hostnames": [s.endpoint for s in sinks]}}})
    try:
        exp.start(None)
        traces = make_traces(60, seed=1)
        settled = send(exp, [s for spans in traces.values() for s in spans])
        total = sum(len(v) for v in traces.values())
        wait_for(lambda: sum(sum(s.snapshot().values()) for s in sinks) >= total)
        ring = HashRing([s.endpoint for s in sinks])
        placed = where(sinks)
        for tid in traces:
            assert placed[tid] == {ring.endpoint_for(bytes.fromhex(tid))}
        assert all(s.snapshot() for s in sinks)             # each backend got traces
        wait_for(lambda: all(x == [False] for x in settled))  # each ack once, ok
    finally:
        exp.shutdown()
        for s in sinks:
            s.close()
    assert sum(sum(s.got.values()) for s in sinks) == total   # nothing duplicated


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dns_membership_changes_move_only_the_traces_the_ring_moves():
    port = free_port()
    hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    sinks = {h: SinkProcess(h, port) for h in hosts}
    answer = {"addrs": hosts[:3]}
    exp = exporter({"protocol": PROTOCOL,
                    "resolver": {"dns": {"hostname": "backends.test", "port": port,
                                         "interval": "50ms"}}},
                   resolve=lambda name, timeout: list(answer["addrs"]))
    traces = make_traces(90, seed=2)
    parts = {tid: [spans[:2], spans[2:3], spans[3:]] for tid, spans in traces.items()}
    phases = [hosts[:3], hosts, [hosts[0], hosts[2], hosts[3]]]   # .4 joins, then .2 leaves
    seen = []
    try:
        exp.start(None)
        sent = 0
        for k, members in enumerate(phases):
            answer["addrs"] = members
            want = sorted(f"{h}:{port}" for h in members)
            wait_for(lambda: exp.ring.endpoints == want)
            before = {h: s.snapshot() for h, s in sinks.items()}
            spans = [s for tid in traces for s in parts[tid][k]]
            send(exp, spans)
            sent += len(spans)
            wait_for(lambda: sum(sum(s.snapshot().values()) for s in sinks.values()) >= sent)
            after = {h: s.snapshot() for h, s in sinks.items()}
            phase = defaultdict(set)
            for h in hosts:
                for tid, n in after[h].items():
                    if n > before[h].get(tid, 0):
                        phase[tid].add(f"{h}:{port}")
            ring = HashRing(want)
            for tid in traces:
                assert phase[tid] == {ring.endpoint_for(bytes.fromhex(tid))}
            seen.append({tid: next(iter(v)) for tid, v in phase.items()})
    finally:
        exp.shutdown()
        for s in sinks.values():
            s.close()
    join = [tid for tid in traces if seen[0][tid] != seen[1][tid]]
    assert join and all(seen[1][tid] == f"127.0.0.4:{port}" for tid in join)
    assert len(join) < len(traces) / 2
    leave = [tid for tid in traces if seen[1][tid] != seen[2][tid]]
    assert leave and all(seen[1][tid] == f"127.0.0.2:{port}" for tid in leave)
    assert sum(sum(s.got.values()) for s in sinks.values()) == sent


def test_config_errors_name_the_field():
    with pytest.raises(ConfigErrors) as err:
        decode(lb.LoadBalancingConfig, {"resolver": {"dns": {"hostname": "", "port": 0}},
                                        "protocol": {"otlp": {"endpoint": "x:1"}},
                                        "routing_key": "spanID"})
    text = str(err.value)
    for path in ("resolver::dns::hostname", "resolver::dns::port", "protocol::otlp::endpoint",
                 "routing_key"):
        assert path in text
    with pytest.raises(ConfigErrors, match="exactly one of static or dns"):
        decode(lb.LoadBalancingConfig, {})


def test_service_routing_keeps_each_service_on_one_backend():
    sinks = [SinkProcess() for _ in range(3)]
    exp = exporter({"routing_key": "service", "protocol": PROTOCOL,
                    "resolver": {"static": {"hostnames": [s.endpoint for s in sinks]}}})
    try:
        exp.start(None)
        traces = make_traces(40, seed=3)
        spans = [s for v in traces.values() for s in v]
        send(exp, spans)
        wait_for(lambda: sum(sum(s.snapshot().values()) for s in sinks) >= len(spans))
        ring = HashRing([s.endpoint for s in sinks])
        want = {svc: ring.endpoint_for(svc.encode()) for svc in ("web", "api")}
        for s in sinks:
            got = s.snapshot()
            expected = sum(1 for sp in spans
                           if want[sp.resource.attributes["service.name"]] == s.endpoint)
            assert sum(got.values()) == expected
    finally:
        exp.shutdown()
        for s in sinks:
            s.close()
