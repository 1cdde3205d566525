"""Checks the shm receiver runs on ring records before any pipeline sees
them: a record a producer (or anyone who can write its ring) made corrupt is
skipped and counted there, instead of failing a whole batch, or a thread,
further on.

* metric records are decoded (the receiver needs their data-point count
  anyway);
* span and log records are walked by ``record_check`` (Cython): the
  decoders' grammar, bounds and UTF-8 rule without building objects, so a
  record passes exactly when ``decode_span`` / ``decode_log`` would accept
  it (its cost next to the OTLP encoder's: bench/ring_checks.py).

Without the extension every span and log record is decoded instead.
"""
from __future__ import annotations

import numpy as np

from otelplug import implementation

if implementation.use_compiled():
    from otelplug._ext import record_check as _record_check
else:   # the reference (otelplug.implementation says why): decode each record
    _record_check = None


def check_metrics(records) -> tuple[int, np.ndarray, list[str]]:
    """(data points in the good records, mask of corrupt records, errors)."""
    from otelplug import codec
    points = 0

    def decode(payload):
        nonlocal points
        points += len(codec.decode_metric(payload).points)
    bad, errors = _decode_each(records, decode)
    return points, bad, errors


def check_spans(records) -> tuple[np.ndarray, list[str]]:
    """(mask of corrupt span records, errors)."""
    if _walkers():
        bad = _record_check.corrupt_spans(records)
        return bad, (["truncated or corrupt span record"] if bad.any() else [])
    from otelplug import codec
    return _decode_each(records, codec.decode_span)


def check_logs(records) -> tuple[np.ndarray, list[str]]:
    """(mask of corrupt log records, errors)."""
    if _walkers():
        bad = _record_check.corrupt_logs(records)
        return bad, (["truncated or corrupt log record"] if bad.any() else [])
    from otelplug import codec
    return _decode_each(records, codec.decode_log)


def _walkers() -> bool:
    """The Cython walkers, unless the pure-Python reference is selected."""
    return _record_check is not None


def _decode_each(records, decode) -> tuple[np.ndarray, list[str]]:
    bad = np.zeros(len(records), dtype=bool)
    errors = []
    for i, p in enumerate(records.payloads()):
        try:
            decode(p)
        except ValueError as exc:
            bad[i] = True
            errors.append(str(exc))
    return bad, errors
