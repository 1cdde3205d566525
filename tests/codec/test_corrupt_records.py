"""Decoders on truncated and corrupt bytes: a clean ValueError (or a
result), never a crash or an out-of-bounds read."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import Histogram, HistogramDataPoint, Metric

from codec_strategies import codec_impls
from otelplug.codec import _pycodec

from test_span_roundtrip import _sdk_spans


def _records():
    spans = _sdk_spans()
    recs = [("span", _pycodec.encode_span(s, 1, 2)) for s in spans]
    h = Metric("h", "d", "ms", Histogram([HistogramDataPoint({"a": 1}, 1, 2, 3, 4.5, [1, 2], [0.5],
                                                            0.1, 9.0, [])], 2))
    recs.append(("metric", _pycodec.encode_metric(h, 1, 2)))
    return recs


def _decoder(impl, kind):
    return {"span": impl.decode_span, "metric": impl.decode_metric, "log": impl.decode_log,
            "definition": impl.decode_definition}[kind]


@pytest.mark.parametrize("impl", codec_impls())
def test_every_truncation_is_rejected(impl):
    for kind, rec in _records():
        dec = _decoder(impl, kind)
        dec(rec)
        for n in range(len(rec)):
            with pytest.raises(ValueError):
                dec(rec[:n])


@pytest.mark.parametrize("impl", codec_impls())
@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 1 << 30), flips=st.integers(1, 8))
def test_bit_flips_never_crash(impl, seed, flips):
    rnd = random.Random(seed)
    for kind, rec in _records():
        b = bytearray(rec)
        for _ in range(flips):
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        try:
            _decoder(impl, kind)(bytes(b))
        except ValueError:
            pass


@pytest.mark.parametrize("impl", codec_impls())
@settings(max_examples=200, deadline=None)
@given(junk=st.binary(max_size=300))
def test_random_bytes_never_crash(impl, junk):
    for kind in ("span", "metric", "log", "definition"):
        try:
            _decoder(impl, kind)(junk)
        except ValueError:
            pass
