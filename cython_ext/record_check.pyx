# cython: language_level=3, cdivision=True
"""Checks of span and log records without decoding them: the same bounded
reads as the decoders (cursor.pxd), the same AnyValue grammar and depth
limit as ``cur_value`` (anyvalue.pxd), and the same UTF-8 rule for strings
(strict, surrogates allowed: Python's "surrogatepass"), but no object is
built.  A record passes exactly when ``decode_span`` / ``decode_log`` would
accept it.  The shm receiver runs them on every record before any pipeline
(otelplug/sidecar/receivers/ring_checks.py).
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t

from wire cimport *
from record_layout cimport *
from cursor cimport *

import numpy as np


cdef bint _utf8_ok(const unsigned char *p, uint64_t n) noexcept nogil:
    """Well-formed UTF-8 where encoded surrogates (ED A0..BF xx) are allowed,
    which is what PyUnicode_DecodeUTF8(..., "surrogatepass") accepts."""
    cdef uint64_t i = 0
    cdef unsigned char b, lo, hi
    cdef int more, k
    while i < n:
        b = p[i]
        if b < 0x80:
            i += 1
            continue
        lo, hi = 0x80, 0xBF
        if 0xC2 <= b <= 0xDF:
            more = 1
        elif b == 0xE0:
            more, lo = 2, 0xA0
        elif 0xE1 <= b <= 0xEF:
            more = 2
        elif b == 0xF0:
            more, lo = 3, 0x90
        elif 0xF1 <= b <= 0xF3:
            more = 3
        elif b == 0xF4:
            more, hi = 3, 0x8F
        else:
            return False
        if n - i <= <uint64_t>more:
            return False
        if not (lo <= p[i + 1] <= hi):
            return False
        for k in range(2, more + 1):
            if not (0x80 <= p[i + k] <= 0xBF):
                return False
        i += more + 1
    return True


cdef void _take_utf8(otp_cursor *c, uint64_t n) noexcept nogil:
    cdef const unsigned char *p = cur_take(c, n)
    if p != NULL and not _utf8_ok(p, n):
        c.err = 1


cdef void _skip_str(otp_cursor *c) noexcept nogil:
    _take_utf8(c, cur_varint(c))


cdef void _skip_nstr(otp_cursor *c) noexcept nogil:
    # 0: None, else length + 1 (as cur_nstr)
    cdef uint64_t n = cur_varint(c)
    if n:
        _take_utf8(c, n - 1)


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
    if tag == T_STR:
        _skip_str(c)
    elif tag == T_BYTES:
        cur_take(c, cur_varint(c))
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


cdef bint _span_bad(otp_cursor *c) noexcept nogil:
    """The walk of decode_span (span_codec.pyx)."""
    cdef const unsigned char *pre = cur_take(c, SPAN_PREFIX)
    cdef uint32_t name_len, n_events, n_links, i
    if pre == NULL:
        return True
    name_len = le32(pre + SPAN_NAME_LEN_AT)
    n_events = le32(pre + SPAN_EVENT_COUNT_AT)
    n_links = le32(pre + SPAN_LINK_COUNT_AT)
    _take_utf8(c, name_len)
    _skip_nstr(c)               # trace state
    _skip_nstr(c)               # status description
    _skip_kvlist(c, 0)          # attributes
    if c.err or n_events > <uint32_t>cur_left(c) or n_links > <uint32_t>cur_left(c):
        return True
    for i in range(n_events):
        cur_u64(c)              # time
        _skip_str(c)            # name
        _skip_kvlist(c, 0)
        cur_varint(c)           # dropped attributes
        if c.err:
            return True
    for i in range(n_links):
        cur_take(c, 24)         # trace id, span id
        cur_u32(c)              # flags
        _skip_nstr(c)           # trace state
        _skip_kvlist(c, 0)
        cur_varint(c)           # dropped attributes
        if c.err:
            return True
    return c.err != 0


cdef bint _log_bad(otp_cursor *c) noexcept nogil:
    """The walk of decode_log (log_codec.pyx)."""
    if cur_take(c, LOG_PREFIX) == NULL:
        return True
    _skip_nstr(c)               # severity text
    _skip_nstr(c)               # event name
    _skip_value(c, 0)           # body
    _skip_kvlist(c, 0)          # attributes
    return c.err != 0


def corrupt_spans(records):
    """A numpy bool array: True where a span record of ``records`` (anything
    with ``data``, ``offsets``, ``lengths``) would not decode."""
    return _walk(records, True)


def corrupt_logs(records):
    """A numpy bool array: True where a log record of ``records`` would not
    decode."""
    return _walk(records, False)


cdef _walk(records, bint spans):
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
            if off > size or ln > size - off or ln == 0:
                out[i] = 1
                continue
            cur_init(&c, &data[off], ln)
            out[i] = _span_bad(&c) if spans else _log_bad(&c)
    return out_a.view(bool)
