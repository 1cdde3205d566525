# cython: language_level=3, cdivision=True
"""The store's text columns of span records, written straight from the ring
bytes: SpanAttributes, Events and Links as JSON, TraceState and
StatusMessage.  The reference is ``otelplug.store.rows`` (decode_span, then
json.dumps); building the dicts only to serialise them cost ~10 us a span.

JSON as the reference writes it: compact separators, UTF-8 kept as is,
bytes as base64, arrays for sequences, and non-finite doubles as the
strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers; OTLP-JSON
spells them so).  A record whose strings are not valid UTF-8 (lone
surrogates) returns None for that span: the caller uses the reference.
"""
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.stdio cimport snprintf
from libc.math cimport isfinite, isnan

from wire cimport *
from record_layout cimport *
from wbuf cimport *
from cursor cimport *

import numpy as np

cdef extern from "Python.h":
    char *PyOS_double_to_string(double val, char format_code, int precision, int flags, int *ptype)
    void PyMem_Free(void *p)
    int Py_DTSF_ADD_DOT_0

cdef const char *HEX = b"0123456789abcdef"
# the escape letter of each control character as Python's json writes it
# (b, t, n, f, r), "u" for \u00XX
cdef const char *ESCAPE = b"uuuuuuuubtnufruuuuuuuuuuuuuuuuuu"
cdef const char *B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


cdef inline int j_lit(otp_wbuf *w, const char *s, Py_ssize_t n) except -1:
    return wb_raw(w, s, n)


cdef int j_str(otp_wbuf *w, const unsigned char *p, Py_ssize_t n) except -1:
    """A JSON string of UTF-8 bytes: quote, backslash and control characters
    escaped as Python's json module does, everything else copied."""
    cdef Py_ssize_t i, start = 0
    cdef unsigned char ch, e
    cdef unsigned char *o
    wb_u8(w, 34)
    for i in range(n):
        ch = p[i]
        if ch >= 0x20 and ch != 34 and ch != 92:
            continue
        wb_raw(w, p + start, i - start)
        start = i + 1
        e = ch if ch == 34 or ch == 92 else ESCAPE[ch]
        if e != 117:                     # a two-character escape
            o = wb_reserve(w, 2)
            o[0] = 92; o[1] = e
        else:                            # \u00XX
            o = wb_reserve(w, 6)
            o[0] = 92; o[1] = 117; o[2] = 48; o[3] = 48
            o[4] = HEX[ch >> 4]; o[5] = HEX[ch & 15]
    wb_raw(w, p + start, n - start)
    return wb_u8(w, 34)


cdef int j_cur_str(otp_wbuf *w, otp_cursor *c) except -1:
    cdef uint64_t n = cur_varint(c)
    cdef const unsigned char *p = cur_take(c, n)
    if p == NULL:
        return 0
    return j_str(w, p, <Py_ssize_t>n)


cdef int j_int(otp_wbuf *w, int64_t v) except -1:
    cdef char buf[32]
    cdef int n = snprintf(buf, 32, "%lld", <long long>v)
    return wb_raw(w, buf, n)


cdef int j_uint(otp_wbuf *w, uint64_t v) except -1:
    cdef char buf[32]
    cdef int n = snprintf(buf, 32, "%llu", <unsigned long long>v)
    return wb_raw(w, buf, n)


cdef int j_double(otp_wbuf *w, double d) except -1:
    cdef char *s
    cdef Py_ssize_t n = 0
    if not isfinite(d):
        if isnan(d):
            return j_lit(w, b'"NaN"', 5)
        return j_lit(w, b'"Infinity"', 10) if d > 0 else j_lit(w, b'"-Infinity"', 11)
    # Python's repr of a float: the shortest text that reads back the same
    s = PyOS_double_to_string(d, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
    if s == NULL:
        raise MemoryError()
    while s[n]:
        n += 1
    try:
        wb_raw(w, s, n)
    finally:
        PyMem_Free(s)
    return 0


cdef int j_base64(otp_wbuf *w, const unsigned char *p, Py_ssize_t n) except -1:
    cdef Py_ssize_t i
    cdef uint32_t v
    cdef unsigned char *o
    wb_u8(w, 34)
    i = 0
    while i + 3 <= n:
        v = (<uint32_t>p[i] << 16) | (<uint32_t>p[i + 1] << 8) | p[i + 2]
        o = wb_reserve(w, 4)
        o[0] = B64[(v >> 18) & 63]; o[1] = B64[(v >> 12) & 63]
        o[2] = B64[(v >> 6) & 63]; o[3] = B64[v & 63]
        i += 3
    if n - i == 1:
        v = <uint32_t>p[i] << 16
        o = wb_reserve(w, 4)
        o[0] = B64[(v >> 18) & 63]; o[1] = B64[(v >> 12) & 63]; o[2] = 61; o[3] = 61
    elif n - i == 2:
        v = (<uint32_t>p[i] << 16) | (<uint32_t>p[i + 1] << 8)
        o = wb_reserve(w, 4)
        o[0] = B64[(v >> 18) & 63]; o[1] = B64[(v >> 12) & 63]; o[2] = B64[(v >> 6) & 63]; o[3] = 61
    return wb_u8(w, 34)


cdef int j_kvlist(otp_wbuf *w, otp_cursor *c, int depth) except -1:
    cdef uint64_t i, n = cur_count(c)
    wb_u8(w, 123)
    for i in range(n):
        if i:
            wb_u8(w, 44)
        j_cur_str(w, c)
        wb_u8(w, 58)
        j_value(w, c, depth)
        if c.err:
            break
    return wb_u8(w, 125)


cdef int j_value(otp_wbuf *w, otp_cursor *c, int depth) except -1:
    cdef uint8_t tag = cur_u8(c)
    cdef uint64_t i, n
    cdef const unsigned char *p
    if c.err or depth > MAX_DEPTH:      # corrupt, or nested deeper than the codec allows
        c.err = 1
        return 0
    if tag == T_STR:
        return j_cur_str(w, c)
    if tag == T_INT:
        return j_int(w, cur_svarint(c))
    if tag == T_DOUBLE:
        return j_double(w, cur_f64(c))
    if tag == T_TRUE:
        return j_lit(w, b"true", 4)
    if tag == T_FALSE:
        return j_lit(w, b"false", 5)
    if tag == T_EMPTY:
        return j_lit(w, b"null", 4)
    if tag == T_BYTES:
        n = cur_varint(c)
        p = cur_take(c, n)
        return j_base64(w, p, <Py_ssize_t>n) if p != NULL else 0
    if tag == T_KVLIST:
        return j_kvlist(w, c, depth + 1)
    if tag < T_ARRAY or tag > T_DOUBLE_ARRAY:
        c.err = 1
        return 0
    n = cur_count(c)
    wb_u8(w, 91)
    for i in range(n):
        if i:
            wb_u8(w, 44)
        if tag == T_STR_ARRAY:
            j_cur_str(w, c)
        elif tag == T_INT_ARRAY:
            j_int(w, cur_svarint(c))
        elif tag == T_DOUBLE_ARRAY:
            j_double(w, cur_f64(c))
        elif tag == T_BOOL_ARRAY:
            if cur_u8(c):
                j_lit(w, b"true", 4)
            else:
                j_lit(w, b"false", 5)
        else:
            j_value(w, c, depth + 1)
        if c.err:
            break
    return wb_u8(w, 93)


cdef int j_hex_id(otp_wbuf *w, const unsigned char *p, int n) except -1:
    """The id as hex in quotes; "" for an all-zero (absent) id."""
    cdef int i
    cdef bint zero = True
    cdef unsigned char *o
    for i in range(n):
        if p[i]:
            zero = False
            break
    if zero:
        return j_lit(w, b'""', 2)
    o = wb_reserve(w, 2 * n + 2)
    o[0] = 34
    for i in range(n):
        o[1 + 2 * i] = HEX[p[i] >> 4]
        o[2 + 2 * i] = HEX[p[i] & 15]
    o[2 * n + 1] = 34
    return 0


cdef object _text(otp_wbuf *w):
    """The buffer as str, None if it is not valid UTF-8 (lone surrogates)."""
    try:
        return PyUnicode_DecodeUTF8(<const char *>w.data, w.len, NULL)
    except UnicodeDecodeError:
        return None


cdef object _nstr_text(otp_cursor *c):
    cdef uint64_t n = cur_varint(c)
    cdef const unsigned char *p
    if n <= 1:
        return ""
    p = cur_take(c, n - 1)
    if p == NULL:
        return ""
    try:
        return PyUnicode_DecodeUTF8(<const char *>p, <Py_ssize_t>(n - 1), NULL)
    except UnicodeDecodeError:
        return None


ctypedef int (*item_writer)(otp_wbuf *w, otp_cursor *c) except -1


cdef int j_event(otp_wbuf *w, otp_cursor *c) except -1:
    """One span event: {"Timestamp": ns, "Name": ..., "Attributes": {...}}."""
    j_lit(w, b'{"Timestamp":', 13)
    j_uint(w, cur_u64(c))
    j_lit(w, b',"Name":', 8)
    j_cur_str(w, c)
    j_lit(w, b',"Attributes":', 14)
    j_kvlist(w, c, 0)
    cur_varint(c)          # dropped attributes: not a column
    return wb_u8(w, 125)


cdef int j_link(otp_wbuf *w, otp_cursor *c) except -1:
    """One span link: {"TraceId", "SpanId", "TraceState", "Attributes"}."""
    cdef const unsigned char *p
    cdef uint64_t n
    j_lit(w, b'{"TraceId":', 11)
    p = cur_take(c, 16)
    if p == NULL:
        return 0
    j_hex_id(w, p, 16)
    j_lit(w, b',"SpanId":', 10)
    p = cur_take(c, 8)
    if p == NULL:
        return 0
    j_hex_id(w, p, 8)
    cur_u32(c)             # link flags: not a column
    j_lit(w, b',"TraceState":', 14)
    n = cur_varint(c)
    if n <= 1:
        j_lit(w, b'""', 2)
    else:
        p = cur_take(c, n - 1)
        if p == NULL:
            return 0
        j_str(w, p, <Py_ssize_t>(n - 1))
    j_lit(w, b',"Attributes":', 14)
    j_kvlist(w, c, 0)
    cur_varint(c)
    return wb_u8(w, 125)


cdef object _items_text(otp_wbuf *w, otp_cursor *c, uint32_t n, item_writer write):
    """A JSON array of ``n`` items read by ``write``, as str (None: not UTF-8)."""
    cdef uint32_t i
    w.len = 0
    wb_u8(w, 91)
    for i in range(n):
        if i:
            wb_u8(w, 44)
        write(w, c)
        if c.err:
            break
    wb_u8(w, 93)
    return _text(w)


def span_text_columns(batch, rows):
    """For the span records ``rows`` of ``batch`` (a RecordSet): five object
    arrays, SpanAttributes / Events / Links JSON, TraceState, StatusMessage.
    An entry is None where the reference must do that span (invalid UTF-8);
    a corrupt record raises ValueError."""
    cdef const unsigned char[::1] data = batch.data
    cdef const uint64_t[::1] offsets = batch.offsets
    cdef const uint32_t[::1] lengths = batch.lengths
    cdef const int64_t[::1] rix = np.ascontiguousarray(rows, dtype=np.int64)
    cdef Py_ssize_t n = rix.shape[0], k, r
    cdef otp_cursor c
    cdef const unsigned char *pre
    cdef uint32_t name_len, n_events, n_links
    cdef otp_wbuf w
    attrs = np.empty(n, dtype=object)
    events = np.empty(n, dtype=object)
    links = np.empty(n, dtype=object)
    states = np.empty(n, dtype=object)
    messages = np.empty(n, dtype=object)
    empty_obj, empty_list = "{}", "[]"
    wb_init(&w)
    try:
        for k in range(n):
            r = rix[k]
            cur_init(&c, &data[0] + offsets[r], lengths[r])
            pre = cur_take(&c, SPAN_PREFIX)
            if pre == NULL:
                raise ValueError("truncated span record")
            name_len = le32(pre + SPAN_NAME_LEN_AT)
            n_events = le32(pre + SPAN_EVENT_COUNT_AT)
            n_links = le32(pre + SPAN_LINK_COUNT_AT)
            cur_take(&c, name_len)
            states[k] = _nstr_text(&c)
            messages[k] = _nstr_text(&c)
            w.len = 0
            j_kvlist(&w, &c, 0)
            attrs[k] = empty_obj if w.len == 2 else _text(&w)
            if n_events > <uint32_t>cur_left(&c) or n_links > <uint32_t>cur_left(&c):
                raise ValueError("corrupt span record: counts exceed the record")
            events[k] = empty_list if n_events == 0 else _items_text(&w, &c, n_events, j_event)
            links[k] = empty_list if n_links == 0 else _items_text(&w, &c, n_links, j_link)
            if c.err:
                raise ValueError("truncated or corrupt span record")
    finally:
        wb_free(&w)
    return attrs, events, links, states, messages
