"""spanmetrics connector: real SDK spans (as ring records) to calls and
duration metrics, checked against counts and buckets computed by hand,
including weighting by the sampling adjusted count."""
from __future__ import annotations

import time
import urllib.request

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.span import SpanContext, TraceFlags, TraceState

from otelplug import ShmSpanProcessor, codec
from otelplug.codec import types as wire
from otelplug.sidecar.config.errors import ConfigErrors
from otelplug.sidecar.config.model import load
from otelplug.sidecar.connectors import spanmetrics as sm
from otelplug.sidecar.factories import Registry
from otelplug.sidecar.service import Service
from tests.sidecar.helpers import Capture, counting_ack, make, records_from_spans

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def provider(service, **extra):
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": service, **extra}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    return tp.get_tracer("t"), mem


def span(tracer, name, dur_ms, kind=SpanKind.INTERNAL, status=None, attrs=None, trace_state=None):
    ctx = None
    if trace_state is not None:
        parent = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1),
                             trace_state=TraceState.from_header([trace_state]))
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(parent))
    s = tracer.start_span(name, context=ctx, kind=kind, attributes=attrs, start_time=T0)
    if status:
        s.set_status(Status(status))
    s.end(end_time=T0 + int(dur_ms * MS))


def points(records):
    """{(metric name, frozenset(attrs)): point} of emitted metric records."""
    out = {}
    for p in records.payloads():
        m = codec.decode_metric(p)
        for pt in m.points:
            out[(m.name, frozenset(pt.attributes.items()))] = (m, pt)
    return out


def key(service, name, kind="SPAN_KIND_INTERNAL", status="STATUS_CODE_UNSET", **extra):
    return frozenset({"service.name": service, "span.name": name, "span.kind": kind,
                      "status.code": status, **extra}.items())


def test_adjusted_count_from_tracestate():
    assert sm.adjusted_count("ot=th:8") == 2.0
    assert sm.adjusted_count("vendor=x,ot=rv:abcdef01234567;th:c") == 4.0
    assert sm.adjusted_count("ot=th:0") == 1.0
    assert sm.adjusted_count("ot=th:fffffffffffff") == pytest.approx(2**56 / 16)
    assert sm.adjusted_count("ot=th:zz") == 1.0 and sm.adjusted_count("other=th:8") == 1.0


def test_counts_and_buckets_equal_hand_computation():
    cap = Capture()
    conn = make(sm.factory, {}, cap)
    shop, shop_mem = provider("shop")
    pay, pay_mem = provider("pay")
    # durations around the default bounds (ms): 2 is in the le=2 bucket (upper-inclusive)
    for d in (1, 2, 3, 2.5, 50, 20_000):
        span(shop, "GET /", d, SpanKind.SERVER)
    span(shop, "GET /", 7, SpanKind.SERVER, StatusCode.ERROR)
    span(pay, "charge", 100, SpanKind.CLIENT, StatusCode.OK)
    span(pay, "charge", 100, SpanKind.CLIENT, StatusCode.OK)
    ack, settled = counting_ack()
    spans = shop_mem.get_finished_spans() + pay_mem.get_finished_spans()
    conn.consume(records_from_spans(spans, acks=[ack]))
    assert settled == [False]          # the connector settled the spans' acks
    out = conn.flush()
    assert cap.got == [out] and out.acks == () and out.items == 6
    got = points(out)
    m, calls = got[("traces.span.metrics.calls", key("shop", "GET /", "SPAN_KIND_SERVER"))]
    assert calls.value == 6 and m.is_monotonic and m.temporality == sm.CUMULATIVE
    assert m.kind == wire.M_SUM
    m, h = got[("traces.span.metrics.duration", key("shop", "GET /", "SPAN_KIND_SERVER"))]
    assert m.kind == wire.M_HISTOGRAM and m.unit == "ms"
    assert h.explicit_bounds == (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000,
                                 5000, 10000, 15000)
    #               <=2  <=4  <=6 <=8 <=10 <=50 ... overflow
    assert h.bucket_counts == (2, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)
    assert h.count == 6 and h.sum == pytest.approx(1 + 2 + 3 + 2.5 + 50 + 20_000)
    assert h.min == 1 and h.max == 20_000
    _, err = got[("traces.span.metrics.calls",
                  key("shop", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR"))]
    assert err.value == 1
    _, charge = got[("traces.span.metrics.calls",
                     key("pay", "charge", "SPAN_KIND_CLIENT", "STATUS_CODE_OK"))]
    assert charge.value == 2
    # cumulative: a second batch adds up, same start time
    conn.consume(records_from_spans(pay_mem.get_finished_spans()))
    again = points(conn.flush())
    _, charge2 = again[("traces.span.metrics.calls",
                        key("pay", "charge", "SPAN_KIND_CLIENT", "STATUS_CODE_OK"))]
    assert charge2.value == 4 and charge2.start_time_unix_nano == charge.start_time_unix_nano


def test_sampled_spans_count_their_adjusted_count():
    cap = Capture()
    conn = make(sm.factory, {}, cap)
    tr, mem = provider("svc")
    span(tr, "op", 1, trace_state="ot=th:8")          # 1 in 2 sampled: counts 2
    span(tr, "op", 30, trace_state="ot=rv:01;th:c")   # 1 in 4: counts 4
    span(tr, "op", 30, trace_state="vendor=1")        # no threshold: 1
    span(tr, "op", 30)
    conn.consume(records_from_spans(mem.get_finished_spans()))
    got = points(conn.flush())
    _, calls = got[("traces.span.metrics.calls", key("svc", "op"))]
    _, h = got[("traces.span.metrics.duration", key("svc", "op"))]
    assert calls.value == 8
    assert h.count == 8 and h.bucket_counts[0] == 2 and h.bucket_counts[5] == 6
    assert h.sum == pytest.approx(1 * 2 + 30 * 4 + 30 + 30)


def test_extra_dimensions_defaults_exclusions_namespace_and_delta():
    cap = Capture()
    conn = make(sm.factory, {
        "namespace": "", "exclude_dimensions": ["status.code"],
        "aggregation_temporality": "AGGREGATION_TEMPORALITY_DELTA",
        "histogram": {"unit": "s", "explicit": {"buckets": ["10ms", "1s"]}},
        "dimensions": [{"name": "http.method", "default": "GET"}, {"name": "host.name"},
                       {"name": "missing"}]}, cap)
    tr, mem = provider("svc", **{"host.name": "h1"})
    span(tr, "a", 5, attrs={"http.method": "POST"})
    span(tr, "a", 500)
    span(tr, "a", 5000, status=StatusCode.ERROR)
    conn.consume(records_from_spans(mem.get_finished_spans()))
    got = points(conn.flush())
    base = {"service.name": "svc", "span.name": "a", "span.kind": "SPAN_KIND_INTERNAL",
            "host.name": "h1"}
    _, post = got[("calls", frozenset({**base, "http.method": "POST"}.items()))]
    _, get = got[("calls", frozenset({**base, "http.method": "GET"}.items()))]
    assert (post.value, get.value) == (1, 2)
    m, h = got[("duration", frozenset({**base, "http.method": "GET"}.items()))]
    assert m.unit == "s" and m.temporality == sm.DELTA
    assert h.explicit_bounds == (0.01, 1.0) and h.bucket_counts == (0, 1, 1)
    assert conn.flush() is None            # delta: nothing new, nothing emitted


def test_batches_are_not_aggregated_per_span_in_python(monkeypatch):
    """Without extra dimensions no span is decoded one by one."""
    conn = make(sm.factory, {}, Capture())
    tr, mem = provider("svc")
    for i in range(50):
        span(tr, f"op{i % 5}", i)
    monkeypatch.setattr(codec, "decode_span", lambda *a: pytest.fail("per-span decode"))
    conn.consume(records_from_spans(mem.get_finished_spans()))
    assert sum(pt.value for (name, _), (_, pt) in points(conn.flush()).items()
               if name.endswith("calls")) == 50


def test_config_errors_name_the_field():
    text = """
receivers: {shm: {}}
exporters: {debug: {}}
connectors:
  spanmetrics:
    dimensions: [{name: span.name}, {default: x}]
    histogram: {unit: h, explicit: {buckets: [1s, 10ms]}}
service:
  pipelines:
    traces: {receivers: [shm], exporters: [spanmetrics]}
    metrics: {receivers: [spanmetrics], exporters: [debug]}
"""
    from otelplug.sidecar.exporters import debug
    from otelplug.sidecar.receivers import shm
    reg = Registry([shm.factory, debug.factory, sm.factory])
    with pytest.raises(ConfigErrors) as ei:
        load("s.yaml", reg, text=text)
    msg = str(ei.value)
    assert "connectors::spanmetrics::histogram::unit" in msg
    assert "connectors::spanmetrics::histogram::explicit::buckets" in msg
    assert "connectors::spanmetrics::dimensions::1::name" in msg
    text2 = text.replace("    histogram: {unit: h, explicit: {buckets: [1s, 10ms]}}\n", "")
    text2 = text2.replace(", {default: x}", "")
    with pytest.raises(ConfigErrors) as ei:
        load("s.yaml", reg, text=text2)
    assert "connectors::spanmetrics::dimensions::0::name" in str(ei.value)


def test_pipeline_spans_to_prometheus():
    """shm -> spanmetrics -> prometheus, in a running Service."""
    import socket
    from otelplug.sidecar.exporters import prometheus
    from otelplug.sidecar.receivers import shm
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reg = Registry([shm.factory, sm.factory, prometheus.factory])
    svc = Service(load("p.yaml", reg, text=f"""
receivers: {{shm: {{channels: [smtest]}}}}
connectors: {{spanmetrics: {{metrics_flush_interval: 100ms}}}}
exporters: {{prometheus: {{endpoint: "127.0.0.1:{port}"}}}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], exporters: [spanmetrics]}}
    metrics: {{receivers: [spanmetrics], exporters: [prometheus]}}
"""))
    svc.start()
    try:
        tp = TracerProvider(resource=Resource.create({"service.name": "web"}))
        tp.add_span_processor(ShmSpanProcessor("smtest"))
        tr = tp.get_tracer("x")
        for _ in range(7):
            with tr.start_as_current_span("GET /", kind=SpanKind.SERVER):
                pass
        tp.force_flush()
        want = ('traces_span_metrics_calls_total{job="web",otel_scope_name="spanmetricsconnector",'
                'service_name="web",span_kind="SPAN_KIND_SERVER",span_name="GET /",'
                'status_code="STATUS_CODE_UNSET"} 7')
        deadline = time.monotonic() + 20
        body = ""
        while time.monotonic() < deadline and want not in body:
            time.sleep(0.1)
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert want in body, body
        assert "traces_span_metrics_duration_milliseconds_bucket{" in body
        tp.shutdown()
    finally:
        svc.shutdown()
