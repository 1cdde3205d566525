"""Log records (logs and events): SDK record -> record -> model, on both codecs."""
from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.trace import TraceFlags

from codec_strategies import any_values, codec_impls, keys, resources, scopes, span_ids, times, trace_ids
from otelplug import codec
from otelplug.codec import from_sdk

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def same(a, b):
    return repr(a) == repr(b)


@st.composite
def log_records(draw):
    rec = LogRecord(
        timestamp=draw(st.one_of(st.none(), times)), observed_timestamp=draw(times),
        severity_text=draw(st.one_of(st.none(), st.text(max_size=10))),
        severity_number=draw(st.one_of(st.none(), st.sampled_from(list(SeverityNumber)))),
        body=draw(any_values), attributes=draw(st.dictionaries(keys, any_values, max_size=6)),
        event_name=draw(st.one_of(st.none(), st.text(max_size=20))))
    # trace context directly (the context= route needs a live span)
    rec.trace_id = draw(st.one_of(st.just(0), trace_ids))
    rec.span_id = draw(st.one_of(st.just(0), span_ids))
    rec.trace_flags = draw(st.one_of(st.none(), st.integers(0, 255).map(TraceFlags)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rw = ReadWriteLogRecord(
            rec, resource=draw(resources), instrumentation_scope=draw(scopes),
            limits=LogRecordLimits(max_attributes=draw(st.integers(0, 8))))
    return rw


@pytest.mark.parametrize("impl", codec_impls())
@SETTINGS
@given(rw=log_records(), rkey=st.integers(0, (1 << 64) - 1))
def test_log_round_trip(impl, rw, rkey):
    rec = impl.encode_log(rw.log_record, rw.dropped_attributes, rkey, 3)
    got = impl.decode_log(rec)
    assert same(got, from_sdk.log_from_sdk(rw.log_record, rw.dropped_attributes, rkey, 3))


@pytest.mark.usefixtures("cython_built")
@SETTINGS
@given(rw=log_records())
def test_log_codecs_write_identical_bytes(rw):
    cy = codec.cython_impl.encode_log(rw.log_record, rw.dropped_attributes, 5, 6)
    py = codec.python_impl.encode_log(rw.log_record, rw.dropped_attributes, 5, 6)
    assert cy == py


@pytest.mark.parametrize("impl", codec_impls())
def test_sdk_logs_and_events(impl):
    exporter = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = lp.get_logger("app.logs", "1.2")
    logger.emit(body={"nested": [1, "two", {"three": b"\x00\xff"}], "empty": {}},
                severity_number=SeverityNumber.WARN, severity_text="WARN",
                attributes={"k": "v", "bytes": b"raw", "map": {"a": 1}})
    logger.emit(event_name="checkout.done", body="ok", attributes={"amount": 9.5})
    recs = exporter.get_finished_logs()
    assert len(recs) == 2
    for rw in recs:
        got = impl.decode_log(impl.encode_log(rw.log_record, rw.dropped_attributes, 1, 2))
        assert same(got, from_sdk.log_from_sdk(rw.log_record, rw.dropped_attributes, 1, 2))
    first = impl.decode_log(impl.encode_log(recs[0].log_record, 0, 1, 2))
    assert first.body == {"nested": (1, "two", {"three": b"\x00\xff"}), "empty": {}}
    assert first.severity_number == SeverityNumber.WARN.value
    assert first.attributes["map"] == {"a": 1}
    event = impl.decode_log(impl.encode_log(recs[1].log_record, 0, 1, 2))
    assert event.event_name == "checkout.done" and event.time_unix_nano is None
