"""Checks the shm receiver runs on ring records before any pipeline sees
them: a record a producer (or anyone who can write its ring) made corrupt is
skipped and counted there, instead of failing a whole batch, or a thread,
further on.

* metric records are decoded (the receiver needs their data-point count
  anyway);
* span records are walked by the Cython shape hasher (``span_shape``; its
  cost next to the OTLP encoder's: bench/ring_checks.py): hash 0 means
  truncated or structurally corrupt, exactly the
  records ``decode_span`` rejects except for invalid UTF-8 in a string,
  which the encoders handle.  Without the extension every span is decoded.
* log records are not checked here (a full decode costs microseconds a
  record); the encoders skip a corrupt one.
"""
from __future__ import annotations

import numpy as np

try:
    from otelplug._ext import span_shape as _span_shape
except ImportError:   # extension not built: decode each span instead
    _span_shape = None

_NO_VALUE_KEYS = None


def check_metrics(records) -> tuple[int, np.ndarray, list[str]]:
    """(data points in the good records, mask of corrupt records, errors)."""
    from otelplug import codec
    points = 0
    bad = np.zeros(len(records), dtype=bool)
    errors = []
    for i, p in enumerate(records.payloads()):
        try:
            points += len(codec.decode_metric(p).points)
        except ValueError as exc:
            bad[i] = True
            errors.append(str(exc))
    return points, bad, errors


def check_spans(records) -> tuple[np.ndarray, list[str]]:
    """(mask of corrupt span records, errors)."""
    global _NO_VALUE_KEYS
    from otelplug import codec
    if _span_shape is not None and codec.default_impl() is codec.cython_impl:
        if _NO_VALUE_KEYS is None:
            _NO_VALUE_KEYS = _span_shape.KeySet([], 0)
        bad = _span_shape.span_shapes(records, _NO_VALUE_KEYS) == 0
        return bad, (["truncated or corrupt span record"] if bad.any() else [])
    bad = np.zeros(len(records), dtype=bool)
    errors = []
    for i, p in enumerate(records.payloads()):
        try:
            codec.decode_span(p)
        except ValueError as exc:
            bad[i] = True
            errors.append(str(exc))
    return bad, errors
