"""Processors through their factories: batch, attributes, resource,
memory_limiter, and the ack bookkeeping they must keep."""
from __future__ import annotations

import time

import pytest

from otelplug.sidecar.consumer import Refused
from otelplug.sidecar.processors import attributes, batch, memory_limiter, resource
from otelplug.sidecar.telemetry import Telemetry

from .helpers import Capture, counting_ack, make, otlp_spans, records_from_spans, sdk_spans


def attrs_of(span):
    from otelplug.otlp.values import from_kv
    return from_kv(span.attributes)


def test_attributes_actions():
    cap = Capture()
    p = make(attributes.factory, {"actions": [
        {"key": "env", "value": "prod", "action": "insert"},
        {"key": "i", "value": -1, "action": "update"},
        {"key": "copied", "from_attribute": "user.email", "action": "upsert"},
        {"key": "user.email", "action": "hash"},
        {"key": "gone", "action": "delete"},
        {"key": "copied", "pattern": "^(?P<user>[^@]+)@(?P<domain>.+)$", "action": "extract"},
        {"key": "i", "converted_type": "string", "action": "convert"},
    ]}, cap)
    spans = sdk_spans(3, attrs={"gone": True})
    ack, settled = counting_ack()
    p.consume(records_from_spans(spans, (ack,)))
    out = [attrs_of(s) for _, s in otlp_spans(cap.got[0])]
    import hashlib
    for a, src in zip(out, spans):
        assert a["env"] == "prod" and a["i"] == "-1" and "gone" not in a
        assert a["copied"] == src.attributes["user.email"]
        assert a["user.email"] == hashlib.sha256(src.attributes["user.email"].encode()).hexdigest()
        assert a["domain"] == "x" and a["user"] == src.attributes["user.email"].split("@")[0]
    assert settled == [False]  # the ack went through to the capture and settled once


def test_attributes_include_exclude():
    cap = Capture()
    p = make(attributes.factory, {
        "actions": [{"key": "tagged", "value": True, "action": "insert"}],
        "include": {"match_type": "regexp", "span_names": ["^op[01]$"], "services": ["s.c"]},
        "exclude": {"match_type": "strict", "attributes": [{"key": "i", "value": 1}]},
    }, cap)
    p.consume(records_from_spans(sdk_spans(6, service="svc")))
    tagged = {attrs_of(s)["i"]: "tagged" in attrs_of(s) for _, s in otlp_spans(cap.got[0])}
    # op0: i=0,3; op1: i=1,4; op2: i=2,5; i=1 excluded
    assert tagged == {0: True, 1: False, 2: False, 3: True, 4: True, 5: False}


def test_attributes_config_errors_have_paths():
    from otelplug.sidecar.config import ConfigErrors
    from otelplug.sidecar.config.decode import decode
    with pytest.raises(ConfigErrors) as ei:
        decode(attributes.AttributesConfig, {"actions": [{"key": "a"}, {"key": "b", "action": "insert"},
                                                           {"key": "c", "action": "extract", "pattern": "("}]},
               ("processors", "attributes"))
    msgs = [str(e) for e in ei.value.errors]
    assert msgs == [
        "processors::attributes::actions::0: missing action (one of insert, update, upsert, delete, hash, extract, convert)",
        "processors::attributes::actions::1: insert needs exactly one of value or from_attribute",
        "processors::attributes::actions::2: invalid pattern: missing ), unterminated subpattern at position 0",
    ]


def test_resource_processor_edits_each_resource_once_and_repoints_records():
    cap = Capture()
    p = make(resource.factory, {"attributes": [
        {"key": "deployment.environment.name", "value": "prod", "action": "upsert"},
        {"key": "telemetry.sdk.version", "action": "delete"}]}, cap)
    spans = sdk_spans(4, service="a") + sdk_spans(3, service="b")
    rs = records_from_spans(spans)
    p.consume(rs)
    out = otlp_spans(cap.got[0])
    assert len(out) == 7
    from otelplug.otlp.values import from_kv
    for res, _ in out:
        a = from_kv(res.attributes)
        assert a["deployment.environment.name"] == "prod" and "telemetry.sdk.version" not in a
    assert {from_kv(r.attributes)["service.name"] for r, _ in out} == {"a", "b"}
    assert bytes(rs.buf) == bytes(records_from_spans(spans).buf)  # input untouched


def test_batch_by_size_by_timeout_and_max_size():
    cap = Capture()
    tel = Telemetry()
    p = make(batch.factory, {"send_batch_size": 10, "timeout": "50ms", "send_batch_max_size": 12}, cap,
             telemetry=tel)
    p.start(None)
    acks = [counting_ack() for _ in range(3)]
    p.consume(records_from_spans(sdk_spans(7), (acks[0][0],)))
    assert cap.got == []
    p.consume(records_from_spans(sdk_spans(9), (acks[1][0],)))   # 16 >= 10: size trigger, split 12 + 4
    assert [len(r) for r in cap.got] == [12, 4]
    assert acks[0][1] == [False] and acks[1][1] == [False]        # each settled exactly once
    p.consume(records_from_spans(sdk_spans(3), (acks[2][0],)))
    wait_until(lambda: len(cap.got) == 3)      # the 50 ms timeout trigger
    assert [len(r) for r in cap.got] == [12, 4, 3] and acks[2][1] == [False]
    p.shutdown()
    assert tel.get("processor_batch_timeout_trigger_send").value(processor="batch") == 1
    assert tel.get("processor_outgoing_items").value(processor="batch", otel_signal="traces") == 19


def test_batch_flushes_on_shutdown():
    cap = Capture()
    p = make(batch.factory, {"send_batch_size": 1000, "timeout": "10s"}, cap)
    p.start(None)
    p.consume(records_from_spans(sdk_spans(5)))
    p.shutdown()
    assert sum(len(r) for r in cap.got) == 5


def wait_until(cond, timeout=10.0):
    """No fixed sleeps: poll for the state (the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_memory_limiter_refuses_above_soft_limit_and_recovers():
    """The measure is what the pipeline holds (memory.HELD), not RSS: the
    limiter admits again as soon as the held bytes drop."""
    from otelplug.sidecar.memory import HELD
    cap = Capture()
    p = make(memory_limiter.factory, {"check_interval": "10ms", "limit_mib": 100, "spike_limit_mib": 20}, cap)
    p.rss = lambda: 1 << 40    # a process far above the limit does not make it refuse
    p.start(None)
    p.consume(records_from_spans(sdk_spans(2)))
    HELD.add("test", 90 << 20)         # above the soft limit (80 MiB)
    try:
        wait_until(lambda: p.refusing)   # the check thread notices
        ack, settled = counting_ack()
        with pytest.raises(Refused):
            p.consume(records_from_spans(sdk_spans(2), (ack,)))
        assert settled == []       # refused data is not the processor's to settle
    finally:
        HELD.sub("test", 90 << 20)
    wait_until(lambda: not p.refusing)
    p.consume(records_from_spans(sdk_spans(2)))
    p.shutdown()
    assert cap.items == 4


def test_processor_failure_is_counted_and_contained():
    tel = Telemetry()
    cap = Capture()
    p = make(attributes.factory, {"actions": [{"key": "x", "value": 1, "action": "insert"}]}, cap,
             telemetry=tel)
    from otelplug.codec.recordset import RecordSet
    bad = RecordSet("traces", b"\x00" * 40, [0], [40], {})
    ack, settled = counting_ack()
    p.consume(bad.with_acks((ack,)))
    assert settled == [True]   # settled as failed, not left hanging
    assert tel.get("processor_failed_items").value(processor="attributes", otel_signal="traces") == 1


def test_persistent_queues_are_separate_per_signal(tmp_path):
    """One exporter id used by several signals keeps one on-disk queue each."""
    from otelplug.sidecar.extensions import file_storage
    from otelplug.sidecar.exporters import otlp

    storage = make(file_storage.factory, {"directory": str(tmp_path)})
    storage.start(None)

    class Host:
        def extension(self, name):
            return storage

    dirs = set()
    for signal in ("traces", "logs"):
        exp = make(otlp.factories[0], {"endpoint": "127.0.0.1:1", "tls": {"insecure": True},
                                       "sending_queue": {"storage": "file_storage", "num_consumers": 1}},
                   signal=signal)
        exp.start(Host())
        dirs.add(exp._pq.dir)
        exp.shutdown(drain_timeout=0)
    assert len(dirs) == 2


def test_debug_exporter_verbosity_and_sampling():
    import io

    from otelplug.sidecar.exporters import debug
    exp = make(debug.factory, {"verbosity": "normal", "sampling_initial": 2, "sampling_thereafter": 3})
    exp.stream = io.StringIO()
    exp.clock = lambda: 100.5          # all within one second
    for _ in range(8):
        exp.consume(records_from_spans(sdk_spans(2)))
    out = exp.stream.getvalue()
    # batches 1, 2, then 5 and 8 (every 3rd after the first 2) within one second
    assert out.count("debug: traces: 2 spans") == 4
    exp.clock = lambda: 101.5          # a new second starts over
    exp.consume(records_from_spans(sdk_spans(2)))
    assert exp.stream.getvalue().count("debug: traces: 2 spans") == 5
    assert out.count("  span 'op") == 8
    exp = make(debug.factory, {"verbosity": "detailed"})
    exp.stream = io.StringIO()
    exp.consume(records_from_spans(sdk_spans(1)))
    import json
    detail = json.loads(exp.stream.getvalue().splitlines()[1])
    assert detail["name"] == "op0" and len(detail["traceId"]) == 32
