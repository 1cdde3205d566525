"""Which ring implementation to use: the Cython one, or the pure-Python
reference, as ``otelplug.implementation`` decided for the whole process
(``OTELPLUG_PURE_PYTHON=1``, or the extension not built).  Both expose
RingWriter, RingReader and RecordBatch with the same behaviour; tests run
against both.
"""
from __future__ import annotations

from otelplug import implementation

from . import _pyring

try:
    from otelplug._ext import ring as _cyring
except ImportError:
    if implementation.use_compiled():
        raise               # built but not loadable: an error, not a silent fallback
    _cyring = None          # not built: the selection is then the reference


def default():
    return _cyring if implementation.use_compiled() else _pyring


def by_name(name: str):
    if name in ("cython", "c"):
        if _cyring is None:
            raise ImportError("the otelplug Cython extension is not built")
        return _cyring
    if name in ("python", "py", "pure"):
        return _pyring
    raise ValueError(f"unknown ring implementation {name!r}")
