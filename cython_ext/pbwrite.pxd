# Protobuf wire format on top of wbuf.pxd, for encoders that write OTLP
# messages straight from ring records (otlp_encoder.pyx).
#
# Keys are passed precomputed ((field << 3) | wire type), so a field costs a
# byte store, not a shift and a varint loop.  Proto3 leaves scalar fields at
# their default value (0, "", b"") out of the message; ``pb_uint`` and
# friends do the same, so our bytes match what protobuf serialises.  Oneof
# members are the exception (written even when 0/"": their presence is the
# value), hence ``always`` on pb_str.
#
# Nested messages need their length before their content.  ``pb_open``
# reserves ``hint`` bytes for it and ``pb_close`` writes it, moving the
# content only when the length needs a different number of varint bytes:
# with good hints (1 for attributes, 2 for spans) that never happens in the
# common case, and a record is transcoded in one pass.
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

from wbuf cimport *

cdef extern from "Python.h":
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)

cdef enum:
    PB_VARINT = 0
    PB_I64 = 1
    PB_LEN = 2
    PB_I32 = 5


cdef inline int pb_varint_size(uint64_t v) noexcept nogil:
    cdef int n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline void pb_put_varint(unsigned char *p, uint64_t v) noexcept nogil:
    while v >= 0x80:
        p[0] = <unsigned char>((v & 0x7F) | 0x80)
        p += 1
        v >>= 7
    p[0] = <unsigned char>v


cdef inline int pb_key(otp_wbuf *w, uint32_t key) except -1:
    if key < 0x80:
        return wb_u8(w, <uint8_t>key)
    return wb_varint(w, key)


cdef inline int pb_uint(otp_wbuf *w, uint32_t key, uint64_t v) except -1:
    """A varint field (int64 as its two's complement), left out when 0."""
    if v == 0:
        return 0
    pb_key(w, key)
    return wb_varint(w, v)


cdef inline int pb_fixed64(otp_wbuf *w, uint32_t key, uint64_t v) except -1:
    if v == 0:
        return 0
    pb_key(w, key)
    return wb_u64(w, v)


cdef inline int pb_fixed32(otp_wbuf *w, uint32_t key, uint32_t v) except -1:
    if v == 0:
        return 0
    pb_key(w, key)
    return wb_u32(w, v)


cdef inline int pb_bytes(otp_wbuf *w, uint32_t key, const unsigned char *p, Py_ssize_t n,
                         bint always) except -1:
    """A bytes field (raw, no UTF-8 check); left out when empty unless ``always``."""
    if n == 0 and not always:
        return 0
    pb_key(w, key)
    wb_varint(w, <uint64_t>n)
    return wb_raw(w, p, n)


cdef inline bint pb_all_zero(const unsigned char *p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if p[i]:
            return False
    return True


cdef inline bint utf8_valid(const unsigned char *p, Py_ssize_t n) noexcept nogil:
    """Strict UTF-8 as protobuf requires of string fields: no overlongs, no
    surrogates (the ring format keeps lone surrogates, see anyvalue.pxd), no
    code points past U+10FFFF.  ASCII is checked 8 bytes at a time."""
    cdef Py_ssize_t i = 0
    cdef uint64_t x
    cdef unsigned char c, c1
    while i + 8 <= n:
        memcpy(&x, p + i, 8)
        if x & 0x8080808080808080ULL:
            break
        i += 8
    while i < n:
        c = p[i]
        if c < 0x80:
            i += 1
            continue
        if c < 0xC2:
            return False
        if c < 0xE0:
            if i + 1 >= n or (p[i + 1] & 0xC0) != 0x80:
                return False
            i += 2
            continue
        if i + 1 >= n:
            return False
        c1 = p[i + 1]
        if c < 0xF0:
            if (i + 2 >= n or (c1 & 0xC0) != 0x80 or (p[i + 2] & 0xC0) != 0x80
                    or (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 >= 0xA0)):
                return False
            i += 3
            continue
        if c < 0xF5:
            if (i + 3 >= n or (c1 & 0xC0) != 0x80 or (p[i + 2] & 0xC0) != 0x80
                    or (p[i + 3] & 0xC0) != 0x80
                    or (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 >= 0x90)):
                return False
            i += 4
            continue
        return False
    return True


cdef inline int pb_str(otp_wbuf *w, uint32_t key, const unsigned char *p, Py_ssize_t n,
                       bint always) except -1:
    """A string field from UTF-8 bytes; left out when empty unless
    ``always``.  Bytes that are not strict UTF-8 (lone surrogates a producer
    wrote, or damage) become U+FFFD, as Python's "replace" decoding does: a
    receiver rejects a whole request over one bad string field."""
    if n == 0:
        if always:
            pb_key(w, key)
            return wb_u8(w, 0)
        return 0
    if utf8_valid(p, n):
        pb_key(w, key)
        wb_varint(w, <uint64_t>n)
        return wb_raw(w, p, n)
    b = PyUnicode_DecodeUTF8(<const char *>p, n, "replace").encode("utf-8")
    pb_key(w, key)
    wb_varint(w, <uint64_t>PyBytes_GET_SIZE(b))
    return wb_raw(w, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


cdef inline Py_ssize_t pb_open(otp_wbuf *w, uint32_t key, int hint) except -1:
    """Start a length-delimited field: key, ``hint`` bytes kept for the
    length.  Returns where the content starts, for pb_close."""
    pb_key(w, key)
    wb_reserve(w, hint)
    return w.len


cdef inline int pb_close(otp_wbuf *w, Py_ssize_t start, int hint) except -1:
    """Write the length of the field opened at ``start``; shift the content
    if the length takes more or fewer bytes than were kept for it."""
    cdef Py_ssize_t n = w.len - start
    cdef int size = pb_varint_size(<uint64_t>n)
    if size != hint:
        if size > hint:
            wb_reserve(w, size - hint)
            w.len -= size - hint
        memmove(w.data + start - hint + size, w.data + start, n)
        w.len += size - hint
    pb_put_varint(w.data + start - hint, <uint64_t>n)
    return 0
