"""ShmSpanProcessor in one process: spans reach the consumer losslessly,
drops and errors are counted and never reach the app, and the SDK's
processor contract (sampling, force_flush, shutdown) holds."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, StaticSampler

from otelplug import ShmSpanProcessor
from otelplug.codec import from_sdk

from producer_helpers import drain
from tests.requirements import missing


def _provider(proc, **kw):
    tp = TracerProvider(shutdown_on_exit=False, **kw)
    tp.add_span_processor(proc)
    return tp


def test_spans_reach_the_consumer_with_resource_and_scope():
    proc = ShmSpanProcessor(producer=None)
    tp = _provider(proc, resource=Resource({"service.name": "svc", "process.pid": 1}))
    tracer = tp.get_tracer("my.lib", "3.1", attributes={"scope.k": "v"})
    with tracer.start_as_current_span("outer", attributes={"a": 1}) as outer:
        outer.add_event("e", {"x": 1.5})
        with tracer.start_as_current_span("inner"):
            pass
    assert proc.force_flush()
    got = drain()
    assert [s.name for _, s in got.spans] == ["inner", "outer"]
    pid, inner = got.spans[0]
    assert pid == os.getpid()
    res = got.resource_of(pid, inner)
    assert res.attributes["service.name"] == "svc"
    assert res.attributes["process.pid"] == os.getpid()     # stamped: the writer's pid
    scope = got.scope_of(pid, inner)
    assert (scope.name, scope.version, scope.attributes) == ("my.lib", "3.1", {"scope.k": "v"})
    outer_rec = got.spans[1][1]
    assert inner.parent_span_id == outer_rec.span_id
    assert outer_rec.events[0].attributes == {"x": 1.5}
    # the resource and scope were written once, not per span
    assert len(got.definitions[pid]) == 2
    assert proc.stats()["written"] == 2
    proc.shutdown()


def test_stamp_pid_off_keeps_the_resource_verbatim():
    proc = ShmSpanProcessor(stamp_pid=False)
    tp = _provider(proc, resource=Resource({"service.name": "svc"}))
    with tp.get_tracer("t").start_as_current_span("s"):
        pass
    got = drain()
    pid, span = got.spans[0]
    assert "process.pid" not in got.resource_of(pid, span).attributes
    proc.shutdown()


def test_unsampled_spans_are_not_written():
    proc = ShmSpanProcessor()
    tp = _provider(proc, sampler=StaticSampler(Decision.RECORD_ONLY))
    with tp.get_tracer("t").start_as_current_span("recorded but not sampled") as s:
        assert s.is_recording()
    assert proc.written == 0
    assert drain().spans == []
    proc.shutdown()


def test_shutdown_ignores_later_spans_and_force_flush():
    proc = ShmSpanProcessor()
    tp = _provider(proc)
    tracer = tp.get_tracer("t")
    with tracer.start_as_current_span("before"):
        pass
    assert proc.force_flush(10) is True
    proc.shutdown()
    with tracer.start_as_current_span("after"):
        pass
    assert proc.after_shutdown == 1
    assert proc.force_flush() is False
    assert [s.name for _, s in drain().spans] == ["before"]


def test_oversize_spans_are_counted_never_raised():
    proc = ShmSpanProcessor(capacity=1 << 16, max_record=4096)
    tracer = _provider(proc).get_tracer("t")
    with tracer.start_as_current_span("big", attributes={"blob": "x" * 10000}):
        pass
    with tracer.start_as_current_span("small"):
        pass
    st = proc.stats()
    assert st["dropped"] == 1 and st["too_large"] == 1 and st["written"] == 1
    assert st["ring"]["oversize"] == 1 and st["ring"]["oversize_bytes"] > 10000
    got = drain()
    assert [s.name for _, s in got.spans] == ["small"]
    assert got.rings[os.getpid()]["oversize"] == 1
    proc.shutdown()


def test_full_ring_drops_are_counted():
    proc = ShmSpanProcessor(capacity=1 << 12)      # 4 KiB, no consumer running
    tracer = _provider(proc).get_tracer("t")
    for i in range(100):
        with tracer.start_as_current_span(f"s{i}"):
            pass
    st = proc.stats()
    assert st["written"] + st["dropped"] == 100
    assert st["dropped"] > 0 and st["too_large"] == 0
    assert st["ring"]["dropped_full"] == st["dropped"]
    got = drain()
    assert len(got.spans) == st["written"]
    proc.shutdown()


def test_unencodable_span_is_counted_not_raised(caplog):
    proc = ShmSpanProcessor()
    tracer = _provider(proc).get_tracer("t")
    with tracer.start_as_current_span("bad", attributes={"huge": 1 << 70}):
        pass
    with tracer.start_as_current_span("good"):
        pass
    assert proc.encode_errors == 1 and proc.written == 1
    assert "cannot encode span" in caplog.text
    assert [s.name for _, s in drain().spans] == ["good"]
    proc.shutdown()


def test_sdk_processor_self_metrics(monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    proc = ShmSpanProcessor(capacity=1 << 16, max_record=2048, meter_provider=mp)
    tracer = _provider(proc).get_tracer("t")
    for i in range(3):
        with tracer.start_as_current_span("ok"):
            pass
    with tracer.start_as_current_span("big", attributes={"blob": "x" * 5000}):
        pass
    proc.shutdown()
    with tracer.start_as_current_span("late"):
        pass
    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == "otel.sdk.processor.span.processed":
                    for p in m.data.data_points:
                        points[p.attributes.get("error.type")] = p.value
                        assert p.attributes["otel.component.type"] == "otelplug_shm_span_processor"
    assert points == {None: 3, "too_large": 1, "already_shutdown": 1}


def test_round_trip_through_the_ring_equals_the_sdk_span():
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    proc = ShmSpanProcessor()
    mem = InMemorySpanExporter()
    tp = _provider(proc)
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("t", "1")
    with tracer.start_as_current_span("a", attributes={"l": (1, 2), "s": ("x", "ÿ")}) as a:
        a.add_event("ev", {"nan": float("nan")})
    got = drain()
    [(pid, rec)] = got.spans
    [sdk_span] = mem.get_finished_spans()
    expected = from_sdk.span_from_sdk(sdk_span, rec.resource_key, rec.scope_key)
    assert repr(rec) == repr(expected)
    proc.shutdown()


def test_import_otelplug_is_light():
    code = ("import sys, otelplug; "
            "assert not any(m.startswith(('opentelemetry', 'numpy')) for m in sys.modules), "
            "sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'numpy')))")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("impl", ["python", "cython"])
def test_both_codecs_drive_the_processor(impl):
    from otelplug import codec
    try:
        chosen = codec.by_name(impl)
    except ImportError:
        missing("the Cython codec", "python setup.py build_ext --inplace")
    proc = ShmSpanProcessor(codec=chosen, capacity=1 << 16, max_record=1024)
    tracer = _provider(proc).get_tracer("t")
    with tracer.start_as_current_span("ok", attributes={"k": "v"}):
        pass
    with tracer.start_as_current_span("big", attributes={"blob": "x" * 4000}):
        pass
    with tracer.start_as_current_span("bad", attributes={"n": 1 << 65}):
        pass
    assert (proc.written, proc.dropped, proc.too_large, proc.encode_errors) == (1, 1, 1, 1)
    got = drain()
    [(pid, span)] = got.spans
    assert span.attributes == {"k": "v"}
    assert got.resource_of(pid, span).attributes["process.pid"] == pid
    proc.shutdown()
