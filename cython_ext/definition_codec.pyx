# cython: language_level=3
"""Resource and instrumentation-scope definitions: written once per ring
with ``Producer.define(key, payload)`` and referenced by key from every
record.  Reference: ``encode_resource`` / ``encode_scope`` /
``decode_definition`` in otelplug/codec/_pycodec.py.
"""
import hashlib

from libc.stdint cimport uint64_t

from wire cimport *
from record_layout cimport *
from wbuf cimport *
from cursor cimport *
from anyvalue cimport *

from otelplug.codec import model as _m


def definition_key(payload):
    """64-bit content key of a definition payload (never 0: 0 means none)."""
    k = int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "little")
    return k or 1


cdef inline uint64_t _dropped(object attrs):
    d = getattr(attrs, "dropped", 0)
    return <uint64_t>d if d else 0


def encode_resource(resource, pid=None):
    """RESOURCE payload.  ``pid`` (if given) replaces or adds ``process.pid``,
    so a forked worker's ring carries its own pid (see ShmSpanProcessor)."""
    cdef otp_wbuf w
    attrs = resource.attributes
    if pid is not None:
        attrs = dict(attrs)
        attrs["process.pid"] = pid
    wb_init(&w)
    try:
        wb_u8(&w, DEF_RESOURCE)
        wb_u8(&w, FORMAT_VERSION)
        wb_nstr(&w, resource.schema_url if resource.schema_url else None)
        wb_kvlist(&w, attrs, 0)
        wb_varint(&w, _dropped(resource.attributes))
        return wb_bytes(&w)
    finally:
        wb_free(&w)


def encode_scope(scope):
    """SCOPE payload from an SDK InstrumentationScope."""
    cdef otp_wbuf w
    wb_init(&w)
    try:
        wb_u8(&w, DEF_SCOPE)
        wb_u8(&w, FORMAT_VERSION)
        wb_str(&w, scope.name or "")
        wb_nstr(&w, scope.version)
        wb_nstr(&w, scope.schema_url)
        attrs = scope.attributes
        wb_kvlist(&w, attrs, 0)
        wb_varint(&w, _dropped(attrs))
        return wb_bytes(&w)
    finally:
        wb_free(&w)


def decode_definition(payload):
    """A definition payload to ``model.Resource`` or ``model.Scope``."""
    cdef const unsigned char[::1] view = payload
    cdef otp_cursor c
    if view.shape[0] < 2:
        raise ValueError("truncated definition")
    cur_init(&c, &view[0], view.shape[0])
    kind = cur_u8(&c)
    cur_u8(&c)
    if kind == DEF_RESOURCE:
        schema_url = cur_nstr(&c)
        attrs = cur_kvlist(&c, 0)
        out = _m.Resource(attrs, schema_url, cur_varint(&c))
    elif kind == DEF_SCOPE:
        name = cur_str(&c)
        version = cur_nstr(&c)
        schema_url = cur_nstr(&c)
        attrs = cur_kvlist(&c, 0)
        out = _m.Scope(name, version, schema_url, attrs, cur_varint(&c))
    else:
        raise ValueError(f"unknown definition kind {kind}")
    if c.err:
        raise ValueError("truncated or corrupt definition")
    return out


def wire_constants():
    """The numbers compiled into the codecs (wire.pxd), for the test that
    checks them against otelplug/codec/types.py."""
    return {
        "FORMAT_VERSION": FORMAT_VERSION, "SPAN": REC_SPAN, "LOG": REC_LOG,
        "METRIC": REC_METRIC, "RESOURCE": DEF_RESOURCE, "SCOPE": DEF_SCOPE,
        "T_EMPTY": T_EMPTY, "T_STR": T_STR, "T_FALSE": T_FALSE, "T_TRUE": T_TRUE,
        "T_INT": T_INT, "T_DOUBLE": T_DOUBLE, "T_BYTES": T_BYTES, "T_ARRAY": T_ARRAY,
        "T_KVLIST": T_KVLIST, "T_STR_ARRAY": T_STR_ARRAY, "T_BOOL_ARRAY": T_BOOL_ARRAY,
        "T_INT_ARRAY": T_INT_ARRAY, "T_DOUBLE_ARRAY": T_DOUBLE_ARRAY,
        "FLAG_TRACE_FLAGS_MASK": FLAG_TRACE_FLAGS_MASK, "FLAG_HAS_IS_REMOTE": FLAG_HAS_IS_REMOTE,
        "FLAG_IS_REMOTE": FLAG_IS_REMOTE, "FLAG_SELF_REMOTE": FLAG_SELF_REMOTE,
        "FLAG_HAS_PARENT": FLAG_HAS_PARENT, "LOG_HAS_TIME": LOG_HAS_TIME,
        "LOG_HAS_SEVERITY": LOG_HAS_SEVERITY, "LOG_HAS_TRACE_FLAGS": LOG_HAS_TRACE_FLAGS,
        "M_GAUGE": M_GAUGE, "M_SUM": M_SUM, "M_HISTOGRAM": M_HISTOGRAM,
        "M_EXP_HISTOGRAM": M_EXP_HISTOGRAM, "P_HAS_START": P_HAS_START,
        "X_HAS_SPAN_ID": X_HAS_SPAN_ID, "X_HAS_TRACE_ID": X_HAS_TRACE_ID,
        "SPAN_PREFIX": SPAN_PREFIX, "LOG_PREFIX": LOG_PREFIX, "METRIC_PREFIX": METRIC_PREFIX,
    }

def record_layout_offsets():
    """The record prefix offsets compiled in from record_layout.h, by the names
    otelplug/codec/types.py gives them (tests/codec/test_record_layout.py)."""
    return {
        "SPAN_TRACE_ID_AT": SPAN_TRACE_ID_AT,
        "SPAN_SPAN_ID_AT": SPAN_SPAN_ID_AT,
        "SPAN_PARENT_SPAN_ID_AT": SPAN_PARENT_SPAN_ID_AT,
        "SPAN_START_AT": SPAN_START_AT,
        "SPAN_END_AT": SPAN_END_AT,
        "SPAN_RESOURCE_KEY_AT": SPAN_RESOURCE_KEY_AT,
        "SPAN_SCOPE_KEY_AT": SPAN_SCOPE_KEY_AT,
        "SPAN_FLAGS_AT": SPAN_FLAGS_AT,
        "SPAN_KIND_AT": SPAN_KIND_AT,
        "SPAN_STATUS_AT": SPAN_STATUS_AT,
        "SPAN_VERSION_AT": SPAN_VERSION_AT,
        "SPAN_NAME_LEN_AT": SPAN_NAME_LEN_AT,
        "SPAN_DROPPED_ATTRIBUTES_AT": SPAN_DROPPED_ATTRIBUTES_AT,
        "SPAN_DROPPED_EVENTS_AT": SPAN_DROPPED_EVENTS_AT,
        "SPAN_DROPPED_LINKS_AT": SPAN_DROPPED_LINKS_AT,
        "SPAN_ATTR_COUNT_AT": SPAN_ATTR_COUNT_AT,
        "SPAN_EVENT_COUNT_AT": SPAN_EVENT_COUNT_AT,
        "SPAN_LINK_COUNT_AT": SPAN_LINK_COUNT_AT,
        "SPAN_PREFIX": SPAN_PREFIX,
        "LOG_TRACE_ID_AT": LOG_TRACE_ID_AT,
        "LOG_SPAN_ID_AT": LOG_SPAN_ID_AT,
        "LOG_TIME_AT": LOG_TIME_AT,
        "LOG_OBSERVED_AT": LOG_OBSERVED_AT,
        "LOG_RESOURCE_KEY_AT": LOG_RESOURCE_KEY_AT,
        "LOG_SCOPE_KEY_AT": LOG_SCOPE_KEY_AT,
        "LOG_FLAGS_AT": LOG_FLAGS_AT,
        "LOG_SEVERITY_AT": LOG_SEVERITY_AT,
        "LOG_VERSION_AT": LOG_VERSION_AT,
        "LOG_DROPPED_ATTRIBUTES_AT": LOG_DROPPED_ATTRIBUTES_AT,
        "LOG_ATTR_COUNT_AT": LOG_ATTR_COUNT_AT,
        "LOG_PREFIX": LOG_PREFIX,
        "METRIC_RESOURCE_KEY_AT": METRIC_RESOURCE_KEY_AT,
        "METRIC_SCOPE_KEY_AT": METRIC_SCOPE_KEY_AT,
        "METRIC_KIND_AT": METRIC_KIND_AT,
        "METRIC_TEMPORALITY_AT": METRIC_TEMPORALITY_AT,
        "METRIC_MONOTONIC_AT": METRIC_MONOTONIC_AT,
        "METRIC_VERSION_AT": METRIC_VERSION_AT,
        "METRIC_POINT_COUNT_AT": METRIC_POINT_COUNT_AT,
        "METRIC_PREFIX": METRIC_PREFIX,
    }
