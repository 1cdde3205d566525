# A zero-copy read cursor over one record, shared by every decoder.
#
# Reads are bounds-checked: a read past the end returns 0 (or NULL), does not
# move the cursor, and sets ``err``.  Decoders read on and check ``err`` once
# at the end, so a corrupt or truncated record costs a few wasted reads, never
# an out-of-bounds access.  Element counts are capped by the bytes left
# (every element takes at least one byte), so garbage counts cannot make a
# decoder loop for long either.  Multi-byte integers are little-endian.
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy

ctypedef struct otp_cursor:
    const unsigned char *buf
    Py_ssize_t len
    Py_ssize_t pos
    int err


cdef inline void cur_init(otp_cursor *c, const unsigned char *buf, Py_ssize_t n) noexcept nogil:
    c.buf = buf
    c.len = n
    c.pos = 0
    c.err = 0


cdef inline Py_ssize_t cur_left(const otp_cursor *c) noexcept nogil:
    return c.len - c.pos


cdef inline const unsigned char *cur_take(otp_cursor *c, uint64_t n) noexcept nogil:
    """Pointer to the next ``n`` bytes, or NULL (and err) if fewer are left."""
    cdef const unsigned char *p
    if c.err or n > <uint64_t>(c.len - c.pos):
        c.err = 1
        return NULL
    p = c.buf + c.pos
    c.pos += <Py_ssize_t>n
    return p


cdef inline uint64_t le64(const unsigned char *p) noexcept nogil:
    return (<uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16)
            | (<uint64_t>p[3] << 24) | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40)
            | (<uint64_t>p[6] << 48) | (<uint64_t>p[7] << 56))


cdef inline uint32_t le32(const unsigned char *p) noexcept nogil:
    return (<uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
            | (<uint32_t>p[3] << 24))


cdef inline uint8_t cur_u8(otp_cursor *c) noexcept nogil:
    cdef const unsigned char *p = cur_take(c, 1)
    return p[0] if p != NULL else 0


cdef inline uint32_t cur_u32(otp_cursor *c) noexcept nogil:
    cdef const unsigned char *p = cur_take(c, 4)
    return le32(p) if p != NULL else 0


cdef inline uint64_t cur_u64(otp_cursor *c) noexcept nogil:
    cdef const unsigned char *p = cur_take(c, 8)
    return le64(p) if p != NULL else 0


cdef inline int64_t cur_i64(otp_cursor *c) noexcept nogil:
    return <int64_t>cur_u64(c)


cdef inline double cur_f64(otp_cursor *c) noexcept nogil:
    cdef uint64_t bits = cur_u64(c)
    cdef double d
    memcpy(&d, &bits, 8)
    return d


cdef inline uint64_t cur_varint(otp_cursor *c) noexcept nogil:
    """Unsigned LEB128, at most 10 bytes."""
    cdef uint64_t v = 0
    cdef int shift = 0
    cdef uint8_t b
    while True:
        if c.err or c.pos >= c.len:
            c.err = 1
            return 0
        b = c.buf[c.pos]
        c.pos += 1
        v |= (<uint64_t>(b & 0x7F)) << shift
        if not (b & 0x80):
            return v
        shift += 7
        if shift > 63:
            c.err = 1
            return 0


cdef inline int64_t cur_svarint(otp_cursor *c) noexcept nogil:
    cdef uint64_t u = cur_varint(c)
    return <int64_t>(u >> 1) ^ -(<int64_t>(u & 1))


cdef inline uint64_t cur_count(otp_cursor *c) noexcept nogil:
    """An element count; more elements than bytes left is corrupt."""
    cdef uint64_t n = cur_varint(c)
    if n > <uint64_t>(c.len - c.pos):
        c.err = 1
        return 0
    return n
