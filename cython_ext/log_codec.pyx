# cython: language_level=3
"""Log records (logs and events): encode an SDK LogRecord, decode one record.

Layout (reference: ``encode_log`` in otelplug/codec/_pycodec.py): a fixed
72-byte prefix (trace context, times, keys, flags, severity number, counts),
then severity text, event name, body (any AnyValue) and attributes (the SDK
allows any AnyValue in log attributes, maps and bytes included).
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memset

from wire cimport *
from record_layout cimport *
from wbuf cimport *
from cursor cimport *
from anyvalue cimport *

from otelplug.codec import model as _m


def encode_log(record, uint64_t dropped_attributes, uint64_t resource_key,
               uint64_t scope_key):
    """One LOG record from an API/SDK LogRecord (``ReadWriteLogRecord.log_record``)."""
    cdef otp_wbuf w
    cdef uint32_t flags = 0
    cdef unsigned char *pre
    trace_flags = record.trace_flags
    timestamp = record.timestamp
    sev = record.severity_number
    attrs = record.attributes
    attrs = plain_dict(attrs) if attrs is not None else {}
    if trace_flags is not None:
        flags |= ((<uint32_t>int(trace_flags)) & FLAG_TRACE_FLAGS_MASK) | LOG_HAS_TRACE_FLAGS
    if timestamp is not None:
        flags |= LOG_HAS_TIME
    if sev is not None:
        flags |= LOG_HAS_SEVERITY
    wb_init(&w)
    try:
        pre = wb_reserve(&w, LOG_PREFIX)
        memset(pre, 0, LOG_PREFIX)
        w.len = 0
        wb_id(&w, record.trace_id, 16)
        wb_id(&w, record.span_id, 8)
        wb_u64(&w, <uint64_t>(timestamp or 0))
        wb_u64(&w, <uint64_t>(record.observed_timestamp or 0))
        wb_u64(&w, resource_key)
        wb_u64(&w, scope_key)
        wb_u32(&w, flags)
        wb_u8(&w, <uint8_t>(<int>sev._value_) if sev is not None else 0)
        wb_u8(&w, FORMAT_VERSION)
        wb_u8(&w, 0)
        wb_u8(&w, 0)
        wb_u32(&w, <uint32_t>dropped_attributes)
        wb_u32(&w, <uint32_t>len(attrs))
        wb_nstr(&w, record.severity_text)
        wb_nstr(&w, record.event_name)
        wb_value(&w, record.body, 0)
        wb_kvlist(&w, attrs, 0)
        return wb_bytes(&w)
    finally:
        wb_free(&w)


def decode_log(payload):
    """One LOG record to ``otelplug.codec.model.LogData``."""
    cdef const unsigned char[::1] view = payload
    cdef otp_cursor c, ids
    cdef const unsigned char *pre
    cdef uint32_t flags
    if view.shape[0] < LOG_PREFIX:
        raise ValueError("truncated log record")
    cur_init(&c, &view[0], view.shape[0])
    pre = cur_take(&c, LOG_PREFIX)
    flags = le32(pre + LOG_FLAGS_AT)
    severity_text = cur_nstr(&c)
    event_name = cur_nstr(&c)
    body = cur_value(&c, 0)
    attrs = cur_kvlist(&c, 0)
    if c.err:
        raise ValueError("truncated or corrupt log record")
    cur_init(&ids, pre, LOG_PREFIX)
    trace_id = cur_id(&ids, 16)
    span_id = cur_id(&ids, 8)
    return _m.LogData(
        time_unix_nano=le64(pre + LOG_TIME_AT) if flags & LOG_HAS_TIME else None,
        observed_time_unix_nano=le64(pre + LOG_OBSERVED_AT), trace_id=trace_id, span_id=span_id,
        trace_flags=(flags & FLAG_TRACE_FLAGS_MASK) if flags & LOG_HAS_TRACE_FLAGS else None,
        severity_number=pre[LOG_SEVERITY_AT] if flags & LOG_HAS_SEVERITY else None,
        severity_text=severity_text, event_name=event_name, body=body, attributes=attrs,
        dropped_attributes=le32(pre + LOG_DROPPED_ATTRIBUTES_AT),
        resource_key=le64(pre + LOG_RESOURCE_KEY_AT), scope_key=le64(pre + LOG_SCOPE_KEY_AT))
