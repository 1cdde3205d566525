# A write buffer for encoders: starts in a stack area and moves to the heap
# only for large records, so the common span costs no malloc.  Multi-byte
# integers are stored little-endian.  Usage:
#
#     cdef otp_wbuf w
#     wb_init(&w)
#     try:
#         ... wb_u8(&w, x) ...
#         return wb_bytes(&w)
#     finally:
#         wb_free(&w)
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy

cdef enum:
    WB_STACK = 1024

ctypedef struct otp_wbuf:
    unsigned char *data
    Py_ssize_t len
    Py_ssize_t cap
    bint heap
    unsigned char stack[WB_STACK]


cdef inline void wb_init(otp_wbuf *w) noexcept nogil:
    w.data = w.stack
    w.len = 0
    w.cap = WB_STACK
    w.heap = False


cdef inline void wb_free(otp_wbuf *w) noexcept nogil:
    if w.heap:
        free(w.data)
    w.data = w.stack
    w.heap = False


cdef inline int wb_grow(otp_wbuf *w, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = w.cap * 2
    cdef unsigned char *p
    while cap < w.len + need:
        cap *= 2
    if w.heap:
        p = <unsigned char *>realloc(w.data, cap)
    else:
        p = <unsigned char *>malloc(cap)
        if p != NULL:
            memcpy(p, w.data, w.len)
    if p == NULL:
        raise MemoryError()
    w.data = p
    w.cap = cap
    w.heap = True
    return 0


cdef inline unsigned char *wb_reserve(otp_wbuf *w, Py_ssize_t n) except NULL:
    """Room for ``n`` more bytes; returns where they go and counts them."""
    cdef unsigned char *p
    if w.len + n > w.cap:
        wb_grow(w, n)
    p = w.data + w.len
    w.len += n
    return p


cdef inline void put_le32(unsigned char *p, uint32_t v) noexcept nogil:
    p[0] = <unsigned char>v
    p[1] = <unsigned char>(v >> 8)
    p[2] = <unsigned char>(v >> 16)
    p[3] = <unsigned char>(v >> 24)


cdef inline void put_le64(unsigned char *p, uint64_t v) noexcept nogil:
    put_le32(p, <uint32_t>v)
    put_le32(p + 4, <uint32_t>(v >> 32))


cdef inline int wb_u8(otp_wbuf *w, uint8_t v) except -1:
    wb_reserve(w, 1)[0] = v
    return 0


cdef inline int wb_u32(otp_wbuf *w, uint32_t v) except -1:
    put_le32(wb_reserve(w, 4), v)
    return 0


cdef inline int wb_u64(otp_wbuf *w, uint64_t v) except -1:
    put_le64(wb_reserve(w, 8), v)
    return 0


cdef inline int wb_f64(otp_wbuf *w, double d) except -1:
    cdef uint64_t bits
    memcpy(&bits, &d, 8)
    put_le64(wb_reserve(w, 8), bits)
    return 0


cdef inline int wb_varint(otp_wbuf *w, uint64_t v) except -1:
    cdef unsigned char *p
    if w.len + 10 > w.cap:
        wb_grow(w, 10)
    p = w.data + w.len
    while v >= 0x80:
        p[0] = <unsigned char>((v & 0x7F) | 0x80)
        p += 1
        v >>= 7
    p[0] = <unsigned char>v
    w.len = (p + 1) - w.data
    return 0


cdef inline int wb_svarint(otp_wbuf *w, int64_t v) except -1:
    return wb_varint(w, (<uint64_t>v << 1) ^ <uint64_t>(v >> 63))


cdef inline int wb_raw(otp_wbuf *w, const void *src, Py_ssize_t n) except -1:
    if n:
        memcpy(wb_reserve(w, n), src, n)
    return 0


cdef inline object wb_bytes(otp_wbuf *w):
    return PyBytes_FromStringAndSize(<char *>w.data, w.len)
