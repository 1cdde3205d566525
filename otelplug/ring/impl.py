"""Which ring implementation to use: the Cython one, or the pure-Python
reference when ``OTELPLUG_PURE_PYTHON=1`` (or when the extension is not
built).  Both expose RingWriter, RingReader and RecordBatch with the same
behaviour; tests run against both.
"""
from __future__ import annotations

import os

from . import _pyring

try:
    from otelplug._ext import ring as _cyring
except ImportError:  # not built: the reference still works, slowly
    _cyring = None

PURE_ENV = "OTELPLUG_PURE_PYTHON"


def default():
    if _cyring is None or os.environ.get(PURE_ENV, "") not in ("", "0"):
        return _pyring
    return _cyring


def by_name(name: str):
    if name in ("cython", "c"):
        if _cyring is None:
            raise ImportError("the otelplug Cython extension is not built")
        return _cyring
    if name in ("python", "py", "pure"):
        return _pyring
    raise ValueError(f"unknown ring implementation {name!r}")
