"""Metric records: SDK metrics data -> records -> model, on both codecs."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import (AggregationTemporality, Buckets, ExponentialHistogram,
                                              ExponentialHistogramDataPoint, Gauge, Histogram,
                                              HistogramDataPoint, Metric, NumberDataPoint, Sum)
from opentelemetry.sdk.metrics._internal.exemplar import Exemplar

from codec_strategies import codec_impls, floats, int64, keys, attr_values, span_ids, times, trace_ids, text
from otelplug import codec
from otelplug.codec import from_sdk, types

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
u64 = st.integers(0, (1 << 64) - 1)
numbers = st.one_of(int64, floats)
attrs = st.dictionaries(keys, attr_values, max_size=4)
temporalities = st.sampled_from(list(AggregationTemporality))

exemplars = st.lists(st.builds(
    Exemplar, attrs, numbers, times, st.one_of(st.none(), span_ids),
    st.one_of(st.none(), trace_ids)), max_size=2)
starts = st.one_of(st.none(), times)
number_points = st.lists(st.builds(NumberDataPoint, attrs, starts, times, numbers, exemplars),
                         max_size=4)
hist_points = st.lists(st.builds(
    HistogramDataPoint, attrs, starts, times, u64, numbers, st.lists(u64, max_size=6),
    st.lists(floats, max_size=5), numbers, numbers, exemplars), max_size=3)
buckets = st.builds(Buckets, int64, st.lists(u64, max_size=6))
exp_points = st.lists(st.builds(
    ExponentialHistogramDataPoint, attrs, starts, times, u64, numbers, st.integers(-10, 20), u64,
    buckets, buckets, st.integers(0, (1 << 32) - 1), numbers, numbers, exemplars), max_size=3)
datas = st.one_of(
    st.builds(Gauge, number_points),
    st.builds(Sum, number_points, temporalities, st.booleans()),
    st.builds(Histogram, hist_points, temporalities),
    st.builds(ExponentialHistogram, exp_points, temporalities),
)
metrics = st.builds(Metric, text, st.one_of(st.none(), text), st.one_of(st.none(), text), datas)


def same(a, b):
    return repr(a) == repr(b)


@pytest.mark.parametrize("impl", codec_impls())
@SETTINGS
@given(metric=metrics, schema=st.one_of(st.none(), text))
def test_metric_round_trip(impl, metric, schema):
    rec = impl.encode_metric(metric, 11, 12, schema, None)
    got = impl.decode_metric(rec)
    assert same(got, from_sdk.metric_from_sdk(metric, 11, 12, schema, None))
    if codec.cython_impl is not None:
        assert rec == codec.python_impl.encode_metric(metric, 11, 12, schema, None)


@pytest.mark.parametrize("impl", codec_impls())
def test_metric_point_slices(impl):
    points = [NumberDataPoint({"i": i}, 1, 2, i) for i in range(10)]
    metric = Metric("m", None, "1", Sum(points, AggregationTemporality.DELTA, True))
    a = impl.decode_metric(impl.encode_metric(metric, 1, 2, None, None, 0, 4))
    b = impl.decode_metric(impl.encode_metric(metric, 1, 2, None, None, 4, None))
    assert [p.value for p in a.points + b.points] == list(range(10))
    assert a.kind == types.M_SUM and a.temporality == 1 and a.is_monotonic
