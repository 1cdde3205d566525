# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Structure checks of ring records without decoding them: the same bounded
reads as the decoders (cursor.pxd) and the same AnyValue grammar and depth
limit as ``cur_value`` (anyvalue.pxd), but no object is built.  The shm
receiver runs them on every record before any pipeline
(otelplug/sidecar/receivers/ring_checks.py).  Strings are not checked for
valid UTF-8 (the decoders raise on that; the OTLP encoders pass the bytes).

Span records are checked by ``span_shape.span_shapes`` (hash 0); this
module covers log records.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t

from wire cimport *
from cursor cimport *

import numpy as np


cdef void _skip_str(otp_cursor *c) noexcept nogil:
    cur_take(c, cur_varint(c))


cdef void _skip_nstr(otp_cursor *c) noexcept nogil:
    # 0: None, else length + 1 (as cur_nstr)
    cdef uint64_t n = cur_varint(c)
    if n:
        cur_take(c, n - 1)


cdef void _skip_kvlist(otp_cursor *c, int depth) noexcept nogil:
    cdef uint64_t i, n = cur_count(c)
    for i in range(n):
        _skip_str(c)
        _skip_value(c, depth)
        if c.err:
            return


cdef void _skip_value(otp_cursor *c, int depth) noexcept nogil:
    cdef uint8_t tag = cur_u8(c)
    cdef uint64_t i, n
    if c.err:
        return
    if depth > MAX_DEPTH:
        c.err = 1
        return
    if tag == T_STR or tag == T_BYTES:
        _skip_str(c)
    elif tag == T_INT:
        cur_svarint(c)
    elif tag == T_DOUBLE:
        cur_f64(c)
    elif tag == T_TRUE or tag == T_FALSE or tag == T_EMPTY:
        pass
    elif tag == T_KVLIST:
        _skip_kvlist(c, depth + 1)
    elif tag == T_STR_ARRAY or tag == T_INT_ARRAY or tag == T_DOUBLE_ARRAY \
            or tag == T_BOOL_ARRAY or tag == T_ARRAY:
        n = cur_count(c)
        for i in range(n):
            if tag == T_STR_ARRAY:
                _skip_str(c)
            elif tag == T_INT_ARRAY:
                cur_svarint(c)
            elif tag == T_DOUBLE_ARRAY:
                cur_f64(c)
            elif tag == T_BOOL_ARRAY:
                cur_u8(c)
            else:
                _skip_value(c, depth + 1)
            if c.err:
                return
    else:
        c.err = 1


def corrupt_logs(records):
    """A numpy bool array: True where a log record of ``records`` (anything
    with ``data``, ``offsets``, ``lengths``) is truncated or malformed, as
    ``decode_log`` would find it (its prefix, severity text, event name,
    body, attributes)."""
    cdef const unsigned char[::1] data = records.data
    offs_a = np.ascontiguousarray(records.offsets, dtype=np.uint64)
    lens_a = np.ascontiguousarray(records.lengths, dtype=np.uint32)
    cdef const uint64_t[::1] offsets = offs_a
    cdef const uint32_t[::1] lengths = lens_a
    cdef Py_ssize_t n = offsets.shape[0], i
    cdef uint64_t size = data.shape[0], off
    cdef uint32_t ln
    cdef otp_cursor c
    out_a = np.zeros(n, np.uint8)
    cdef uint8_t[::1] out = out_a
    with nogil:
        for i in range(n):
            off = offsets[i]
            ln = lengths[i]
            if off > size or ln > size - off or ln < LOG_PREFIX:
                out[i] = 1
                continue
            cur_init(&c, &data[off], ln)
            cur_take(&c, LOG_PREFIX)
            _skip_nstr(&c)              # severity text
            _skip_nstr(&c)              # event name
            _skip_value(&c, 0)          # body
            _skip_kvlist(&c, 0)         # attributes
            out[i] = c.err != 0
    return out_a.view(bool)
