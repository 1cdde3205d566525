"""The telemetry wire format: spans, logs and metrics as compact binary ring
records, with resource and scope written once per ring as definitions.

Two implementations with one interface: the Cython codecs
(``otelplug._ext.{span,log,metric,definition}_codec``) and the pure-Python
reference (``_pycodec``), which tests hold the Cython one to byte for byte.
Which one runs is ``otelplug.implementation``'s one decision for the
process (``OTELPLUG_PURE_PYTHON=1``, or the extension not built).

Encoding::

    rkey = definition_key(payload := encode_resource(resource))
    producer.define(rkey, payload)
    producer.write(types.SPAN, encode_span(readable_span, rkey, skey))

Decoding: ``decode_span`` / ``decode_log`` / ``decode_metric`` /
``decode_definition`` give ``otelplug.codec.model`` objects, and
``decode_span_columns(batch)`` turns a ring batch into numpy columns.
The layout is described in FORMAT.md beside this file.

Also here, for every layer above: ``recordset.RecordSet`` (the batch of
records a signal moves in) and ``views`` (SDK-shaped objects for encoding
records that do not come from an SDK).
"""
from __future__ import annotations

from types import SimpleNamespace

from otelplug import implementation

from . import _pycodec, types
from ._pycolumns import decode_span_columns as _py_decode_span_columns
from .columns import SpanColumns

_NAMES = ("encode_span", "decode_span", "encode_log", "decode_log", "encode_metric",
          "decode_metric", "encode_resource", "encode_scope", "decode_definition",
          "definition_key", "decode_span_columns")

python_impl = SimpleNamespace(name="python", decode_span_columns=_py_decode_span_columns,
                              **{n: getattr(_pycodec, n) for n in _NAMES
                                 if n != "decode_span_columns"})

try:
    from otelplug._ext import definition_codec as _cdef
    from otelplug._ext import log_codec as _clog
    from otelplug._ext import metric_codec as _cmetric
    from otelplug._ext import span_codec as _cspan
except ImportError:
    if implementation.use_compiled():
        raise               # built but not loadable: an error, not a silent fallback
    cython_impl = None      # not built: otelplug.implementation selected the reference
else:
    cython_impl = SimpleNamespace(
        name="cython",
        encode_span=_cspan.encode_span, decode_span=_cspan.decode_span,
        SpanWriter=_cspan.SpanWriter,
        decode_span_columns=_cspan.decode_span_columns,
        encode_log=_clog.encode_log, decode_log=_clog.decode_log,
        encode_metric=_cmetric.encode_metric, decode_metric=_cmetric.decode_metric,
        encode_resource=_cdef.encode_resource, encode_scope=_cdef.encode_scope,
        decode_definition=_cdef.decode_definition, definition_key=_cdef.definition_key)


def default_impl():
    return cython_impl if implementation.use_compiled() else python_impl


def by_name(name: str):
    if name in ("cython", "c"):
        if cython_impl is None:
            raise ImportError("the otelplug Cython extension is not built")
        return cython_impl
    if name in ("python", "py", "pure"):
        return python_impl
    raise ValueError(f"unknown codec implementation {name!r}")


_impl = default_impl()
encode_span = _impl.encode_span
decode_span = _impl.decode_span
decode_span_columns = _impl.decode_span_columns
encode_log = _impl.encode_log
decode_log = _impl.decode_log
encode_metric = _impl.encode_metric
decode_metric = _impl.decode_metric
encode_resource = _impl.encode_resource
encode_scope = _impl.encode_scope
decode_definition = _impl.decode_definition
definition_key = _impl.definition_key

__all__ = list(_NAMES) + ["SpanColumns", "by_name", "cython_impl", "default_impl",
                          "python_impl", "types"]
