# cython: language_level=3, cdivision=True
"""Span *shapes* straight from span records: one 64-bit hash per record of
exactly what the ``semconv`` processor's shape-cache key holds
(``otelplug/sidecar/semconvcheck/engine.py``), without building a
Python object per span.

What a shape is (the check's findings depend on nothing else):

* the name (its UTF-8 bytes) and the kind byte;
* per attribute, in record order: the key, the Python type the value
  decodes to (``str``, ``bool`` - true and false alike -, ``int``,
  ``float``, ``None``, ``bytes``, ``dict``, ``tuple`` for every array tag),
  for arrays ``infer_type``'s element type (``int[]``, ``any`` ...), and for
  keys in ``value_keys`` (the registry's enum attributes) the value itself;
* the same for every event (name, attributes) and link (attributes).

The hash is a keyed multiply-fold hash (wyhash's ``mum``: 64x64->128-bit
multiply, the halves xor-ed) over a canonical stream of 64-bit words, each
part length- or count-prefixed so the stream decodes one way only: strings
are hashed on their own (length, then 8-byte little-endian words, the last
zero-padded) and enter the stream as one word.  ``KeySet(keys, seed)``
derives the secrets from ``seed``; ``span_shapes`` hashes with the secrets
of the ``KeySet`` it is given.  ``otelplug.sidecar.semconvcheck.shapes``
is the pure-Python reference of the same function, computed from decoded
spans (tests hold the two to each other).

Canonical means: equal hashes come from equal shapes (up to 64-bit
collisions), and the engine's equal keys give equal hashes except in cases
where the engine's key is looser than the wire (a kvlist with a key twice;
``-0.0``/``0.0`` and ``(True,)``/``(1,)`` as enum values): those only cost
an extra cache entry, never a wrong verdict.

Hash 0 means "no shape": the record is truncated or corrupt (every read is
bounds-checked by the codec's cursor), or an enum attribute holds a map
(unhashable in the engine's key as well).  The engine checks such records
one by one through ``decode_span``, which raises where it always did.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t, int32_t
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memcmp, memcpy, memset

from wire cimport *
from record_layout cimport *
from cursor cimport *

import numpy as np

cdef extern from *:
    """
    static inline uint64_t otp_mum(uint64_t a, uint64_t b) {
        __uint128_t r = (__uint128_t)a * b;
        return (uint64_t)r ^ (uint64_t)(r >> 64);
    }
    #define OTP_P0 0xa0761d6478bd642fULL
    #define OTP_P1 0xe7037ed1a0b428dbULL
    #define OTP_P2 0x8ebc6af09c88c6e3ULL
    #define OTP_P3 0x589965cc75374cc3ULL
    #define OTP_P4 0x1d8e4e27c47d124fULL
    #define OTP_NAN 0x7ff8000000000000ULL
    """
    uint64_t otp_mum(uint64_t a, uint64_t b) noexcept nogil
    uint64_t OTP_P0, OTP_P1, OTP_P2, OTP_P3, OTP_P4, OTP_NAN

# stream words (small numbers; where they stand in the stream says what they are)
cdef enum:
    W_SPAN = 0x5350414e
    W_END = 0x454e44
    ENUM_FLAG = 0x100
    # Python types of decoded values
    PT_NONE = 0
    PT_STR = 1
    PT_BOOL = 2
    PT_INT = 4
    PT_FLOAT = 5
    PT_BYTES = 6
    PT_TUPLE = 7
    PT_DICT = 8
    # infer_type of an array (shifted left by 4 into the attribute word)
    IT_NONE = 0
    IT_BOOL = 1
    IT_INT = 2
    IT_DOUBLE = 3
    IT_STR = 4
    IT_ANY = 5
    IT_ANY_ARRAY = 6       # "any[]": every element an array whose type is "any"
    # element-type bits of a generic array
    B_BOOL = 1
    B_INT = 2
    B_DOUBLE = 4
    B_STR = 8
    B_NONE = 16
    B_ARRT = 32            # an element array typed "X[]" (or "any[]")
    B_ANY = 64             # an element array typed "any"


ctypedef struct secrets:
    uint64_t s1
    uint64_t s2
    uint64_t s3


cdef inline uint64_t absorb(const secrets *k, uint64_t h, uint64_t w) noexcept nogil:
    return otp_mum(w ^ k.s1, h ^ k.s2)


cdef inline uint64_t _tail(const unsigned char *p, uint64_t n, uint64_t r) noexcept nogil:
    """The last ``r`` (1..7) of the ``n`` bytes at ``p`` as a little-endian
    word, zero-padded - read in whole words (a byte-wise copy to the
    stack and a word load from it stalls store forwarding)."""
    if n >= 8:
        return le64(p + n - 8) >> (8 * (8 - r))
    # n == r < 8: two overlapping reads (or three bytes)
    if r >= 4:
        return <uint64_t>le32(p) | (<uint64_t>le32(p + r - 4) << (8 * (r - 4)))
    return (<uint64_t>p[0] | (<uint64_t>p[r >> 1] << (8 * (r >> 1)))
            | (<uint64_t>p[r - 1] << (8 * (r - 1))))


cdef inline uint64_t str_hash(const secrets *k, const unsigned char *p, uint64_t n) noexcept nogil:
    """Length-seeded, then one ``mum`` per 16-byte block (two words, the
    last block zero-padded; an empty string is one zero block)."""
    cdef uint64_t h = n ^ k.s3
    cdef uint64_t i = 0, r, a, b
    while i + 16 <= n:
        h = otp_mum(le64(p + i) ^ k.s1, le64(p + i + 8) ^ k.s2 ^ h)
        i += 16
    r = n - i
    if r or n == 0:
        if r > 8:
            a = le64(p + i)
            b = _tail(p, n, r - 8)
        else:
            a = _tail(p, n, r) if r else 0
            b = 0
        h = otp_mum(a ^ k.s1, b ^ k.s2 ^ h)
    return h


cdef inline void make_secrets(secrets *k, uint64_t seed) noexcept nogil:
    k.s1 = otp_mum(seed ^ OTP_P0, OTP_P1)
    k.s2 = otp_mum(seed ^ OTP_P2, OTP_P3)
    k.s3 = otp_mum(seed ^ OTP_P4, OTP_P1)


# ------------------------------------------------------------------ key set

ctypedef struct keytab:
    secrets k
    uint64_t *hashes
    uint64_t *offs
    uint32_t *lens
    uint8_t *used
    const unsigned char *base
    Py_ssize_t mask


cdef inline bint kt_has(const keytab *t, uint64_t h, const unsigned char *p, uint64_t n) noexcept nogil:
    cdef Py_ssize_t slot = <Py_ssize_t>(h & <uint64_t>t.mask)
    while t.used[slot]:
        if t.hashes[slot] == h and t.lens[slot] == n and memcmp(t.base + t.offs[slot], p, n) == 0:
            return True
        slot = (slot + 1) & t.mask
    return False


cdef class KeySet:
    """The attribute keys whose values belong in the shape (enum
    attributes), and the hash secrets (from ``seed``)."""
    cdef keytab t
    cdef bytes blob
    cdef readonly uint64_t seed
    cdef readonly Py_ssize_t size

    def __cinit__(self, keys=(), uint64_t seed=0):
        cdef Py_ssize_t cap = 16, slot
        cdef uint64_t h, off = 0
        self.seed = seed
        make_secrets(&self.t.k, seed)
        enc = []
        for key in keys:
            if isinstance(key, str):
                key = key.encode("utf-8", "surrogatepass")
            enc.append(bytes(key))
        enc = list(dict.fromkeys(enc))
        self.size = len(enc)
        while cap < 16 * len(enc):     # mostly empty: a miss is one predictable probe
            cap *= 2
        self.t.mask = cap - 1
        self.blob = b"".join(enc) + b"\0"
        self.t.base = <const unsigned char *>PyBytes_AS_STRING(self.blob)
        self.t.hashes = <uint64_t *>calloc(cap, sizeof(uint64_t))
        self.t.offs = <uint64_t *>calloc(cap, sizeof(uint64_t))
        self.t.lens = <uint32_t *>calloc(cap, sizeof(uint32_t))
        self.t.used = <uint8_t *>calloc(cap, sizeof(uint8_t))
        if not (self.t.hashes and self.t.offs and self.t.lens and self.t.used):
            raise MemoryError()
        for key in enc:
            h = str_hash(&self.t.k, self.t.base + off, len(key))
            slot = <Py_ssize_t>(h & <uint64_t>self.t.mask)
            while self.t.used[slot]:
                slot = (slot + 1) & self.t.mask
            self.t.used[slot] = 1
            self.t.hashes[slot] = h
            self.t.offs[slot] = off
            self.t.lens[slot] = <uint32_t>len(key)
            off += len(key)

    def __dealloc__(self):
        free(self.t.hashes)
        free(self.t.offs)
        free(self.t.lens)
        free(self.t.used)

    def __len__(self):
        return self.size

    def __contains__(self, key):
        if isinstance(key, str):
            key = key.encode("utf-8", "surrogatepass")
        cdef bytes b = bytes(key) + b"\0"
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(b)
        cdef uint64_t n = PyBytes_GET_SIZE(b) - 1
        return kt_has(&self.t, str_hash(&self.t.k, p, n), p, n)

    def hash_bytes(self, data):
        """The string hash (tests: the Python reference must agree)."""
        cdef bytes b = bytes(data) + b"\0"
        return str_hash(&self.t.k, <const unsigned char *>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b) - 1)


# ------------------------------------------------------------ the walkers

cdef int _skip_value(otp_cursor *c, uint8_t tag, int depth, int *infer) noexcept nogil:
    """Step over one value; its Python type code (``infer``: an array's
    element type code), or -1 when corrupt."""
    cdef uint64_t i, n
    cdef int mask, sub, t
    cdef uint8_t et
    infer[0] = IT_NONE
    if depth > MAX_DEPTH:
        return -1
    if tag == T_STR or tag == T_BYTES:
        n = cur_varint(c)
        cur_take(c, n)
        return PT_STR if tag == T_STR else PT_BYTES
    if tag == T_INT:
        cur_varint(c)
        return PT_INT
    if tag == T_DOUBLE:
        cur_take(c, 8)
        return PT_FLOAT
    if tag == T_TRUE or tag == T_FALSE:
        return PT_BOOL
    if tag == T_EMPTY:
        return PT_NONE
    if tag == T_KVLIST:
        n = cur_count(c)
        for i in range(n):
            cur_take(c, cur_varint(c))
            et = cur_u8(c)
            if c.err or _skip_value(c, et, depth + 1, &sub) < 0:
                return -1
        return PT_DICT
    n = cur_count(c)
    if tag == T_STR_ARRAY:
        for i in range(n):
            cur_take(c, cur_varint(c))
            if c.err:
                return -1
        infer[0] = IT_STR if n else IT_NONE
    elif tag == T_INT_ARRAY:
        for i in range(n):
            cur_varint(c)
            if c.err:
                return -1
        infer[0] = IT_INT if n else IT_NONE
    elif tag == T_DOUBLE_ARRAY:
        cur_take(c, 8 * n)
        infer[0] = IT_DOUBLE if n else IT_NONE
    elif tag == T_BOOL_ARRAY:
        cur_take(c, n)
        infer[0] = IT_BOOL if n else IT_NONE
    elif tag == T_ARRAY:
        mask = 0
        for i in range(n):
            et = cur_u8(c)
            if c.err:
                return -1
            t = _skip_value(c, et, depth + 1, &sub)
            if t < 0:
                return -1
            if t == PT_BOOL:
                mask |= B_BOOL
            elif t == PT_INT:
                mask |= B_INT
            elif t == PT_FLOAT:
                mask |= B_DOUBLE
            elif t == PT_STR:
                mask |= B_STR
            elif t == PT_TUPLE:
                if sub == IT_NONE:
                    mask |= B_NONE
                elif sub == IT_ANY:
                    mask |= B_ANY
                else:
                    mask |= B_ARRT
            else:
                mask |= B_NONE
        # infer_type in otelplug.semconv.livecheck, on the set of element types
        if n == 0:
            infer[0] = IT_NONE
        elif (mask & ~(B_INT | B_DOUBLE)) == 0 and (mask & B_DOUBLE):
            infer[0] = IT_DOUBLE
        elif mask == B_BOOL:
            infer[0] = IT_BOOL
        elif mask == B_INT:
            infer[0] = IT_INT
        elif mask == B_STR:
            infer[0] = IT_STR
        elif mask == B_ANY:
            infer[0] = IT_ANY_ARRAY
        else:
            infer[0] = IT_ANY
    else:
        c.err = 1
        return -1
    return -1 if c.err else PT_TUPLE


cdef inline uint64_t _nan_canon(uint64_t bits) noexcept nogil:
    if (bits & 0x7ff0000000000000ULL) == 0x7ff0000000000000ULL and (bits & 0x000fffffffffffffULL):
        return OTP_NAN
    return bits


cdef int _hash_value(otp_cursor *c, uint8_t tag, uint64_t *hp, const secrets *k, int depth) noexcept nogil:
    """Absorb one value itself (an enum attribute's) into ``hp``; -1 when
    corrupt or unhashable (a map)."""
    cdef uint64_t i, n, m, h = hp[0]
    cdef const unsigned char *p
    cdef uint8_t et
    if depth > MAX_DEPTH:
        return -1
    if tag == T_STR or tag == T_BYTES:
        n = cur_varint(c)
        p = cur_take(c, n)
        if p == NULL:
            return -1
        h = absorb(k, h, PT_STR if tag == T_STR else PT_BYTES)
        h = absorb(k, h, str_hash(k, p, n))
    elif tag == T_INT:
        h = absorb(k, h, PT_INT)
        h = absorb(k, h, <uint64_t>cur_svarint(c))
    elif tag == T_DOUBLE:
        h = absorb(k, h, PT_FLOAT)
        h = absorb(k, h, _nan_canon(cur_u64(c)))
    elif tag == T_TRUE or tag == T_FALSE:
        h = absorb(k, h, PT_BOOL)
        h = absorb(k, h, 1 if tag == T_TRUE else 0)
    elif tag == T_EMPTY:
        h = absorb(k, h, PT_NONE)
    elif tag == T_KVLIST:
        return -1
    else:
        n = cur_count(c)
        h = absorb(k, h, PT_TUPLE)
        h = absorb(k, h, n)
        if tag == T_STR_ARRAY:
            for i in range(n):
                m = cur_varint(c)
                p = cur_take(c, m)
                if p == NULL:
                    return -1
                h = absorb(k, h, PT_STR)
                h = absorb(k, h, str_hash(k, p, m))
        elif tag == T_INT_ARRAY:
            for i in range(n):
                h = absorb(k, h, PT_INT)
                h = absorb(k, h, <uint64_t>cur_svarint(c))
        elif tag == T_DOUBLE_ARRAY:
            for i in range(n):
                h = absorb(k, h, PT_FLOAT)
                h = absorb(k, h, _nan_canon(cur_u64(c)))
        elif tag == T_BOOL_ARRAY:
            for i in range(n):
                h = absorb(k, h, PT_BOOL)
                h = absorb(k, h, 1 if cur_u8(c) else 0)
        elif tag == T_ARRAY:
            for i in range(n):
                et = cur_u8(c)
                if c.err or _hash_value(c, et, &h, k, depth + 1) < 0:
                    return -1
        else:
            c.err = 1
    hp[0] = h
    return -1 if c.err else 0


cdef int _hash_attrs(otp_cursor *c, uint64_t *hp, const keytab *ks) noexcept nogil:
    """Absorb an attribute list's shape; -1 when corrupt or unhashable."""
    cdef uint64_t i, n = cur_count(c), klen, kh
    cdef const unsigned char *kp
    cdef const secrets *k = &ks.k
    cdef uint8_t tag
    cdef int t, infer
    cdef uint64_t h = hp[0]
    if c.err:
        return -1
    h = absorb(k, h, n)
    for i in range(n):
        klen = cur_varint(c)
        kp = cur_take(c, klen)
        tag = cur_u8(c)
        if c.err:
            return -1
        kh = str_hash(k, kp, klen)
        # one word per attribute: the key's hash plus its type word
        # times an odd constant (a collision needs two random key hashes
        # 2^-64-unlikely close)
        if kt_has(ks, kh, kp, klen):
            t = _skip_value_type(tag)
            h = absorb(k, h, kh + (ENUM_FLAG | <uint64_t>t) * OTP_P4)
            if _hash_value(c, tag, &h, k, 0) < 0:
                return -1
        else:
            if tag == T_STR:
                cur_take(c, cur_varint(c))
                t = PT_STR
            elif tag == T_INT:
                cur_varint(c)
                t = PT_INT
            else:
                t = _skip_value(c, tag, 0, &infer)
                if t < 0:
                    return -1
                t = t | (infer << 4)
            if c.err:
                return -1
            h = absorb(k, h, kh + <uint64_t>t * OTP_P4)
    hp[0] = h
    return 0


cdef inline int _skip_value_type(uint8_t tag) noexcept nogil:
    if tag == T_STR:
        return PT_STR
    if tag == T_INT:
        return PT_INT
    if tag == T_DOUBLE:
        return PT_FLOAT
    if tag == T_TRUE or tag == T_FALSE:
        return PT_BOOL
    if tag == T_EMPTY:
        return PT_NONE
    if tag == T_BYTES:
        return PT_BYTES
    if tag == T_KVLIST:
        return PT_DICT
    return PT_TUPLE


cdef uint64_t _span_hash(const unsigned char *buf, Py_ssize_t length, const keytab *ks) noexcept nogil:
    cdef otp_cursor c
    cdef const unsigned char *pre
    cdef const unsigned char *p
    cdef uint32_t name_len, n_events, n_links, i
    cdef uint64_t h, n
    cdef const secrets *k = &ks.k
    if length < SPAN_PREFIX:
        return 0
    cur_init(&c, buf, length)
    pre = cur_take(&c, SPAN_PREFIX)
    name_len = le32(pre + SPAN_NAME_LEN_AT)
    n_events = le32(pre + SPAN_EVENT_COUNT_AT)
    n_links = le32(pre + SPAN_LINK_COUNT_AT)
    p = cur_take(&c, name_len)
    if p == NULL:
        return 0
    h = absorb(k, k.s3, W_SPAN)
    h = absorb(k, h, str_hash(k, p, name_len))
    h = absorb(k, h, pre[SPAN_KIND_AT])
    # trace_state, status description: nullable strings, not part of the shape
    n = cur_varint(&c)
    if n:
        cur_take(&c, n - 1)
    n = cur_varint(&c)
    if n:
        cur_take(&c, n - 1)
    if c.err or _hash_attrs(&c, &h, ks) < 0:
        return 0
    if n_events > <uint32_t>cur_left(&c) or n_links > <uint32_t>cur_left(&c):
        return 0
    h = absorb(k, h, n_events)
    for i in range(n_events):
        cur_take(&c, 8)
        n = cur_varint(&c)
        p = cur_take(&c, n)
        if c.err:
            return 0
        h = absorb(k, h, str_hash(k, p, n))
        if _hash_attrs(&c, &h, ks) < 0:
            return 0
        cur_varint(&c)
    h = absorb(k, h, n_links)
    for i in range(n_links):
        cur_take(&c, 28)            # trace id, span id, flags
        n = cur_varint(&c)
        if n:
            cur_take(&c, n - 1)
        if c.err or _hash_attrs(&c, &h, ks) < 0:
            return 0
        cur_varint(&c)
    if c.err:
        return 0
    h = absorb(k, h, W_END)
    return h if h else 1


# --------------------------------------------------------------- the batch

def span_shapes(records, value_keys, resource_keys=None):
    """One shape hash per span record of ``records`` (anything with
    ``data``, ``offsets``, ``lengths``: a RecordSet, a ring batch) as a
    numpy uint64 array; 0 where a record has no shape (corrupt).

    ``value_keys``: a :class:`KeySet` (its seed keys the hash), or keys
    (str or bytes) for a ``KeySet`` with seed 0.  ``resource_keys``: a set
    to add the records' distinct resource keys to (the engine needs them
    and they sit in the same prefix)."""
    cdef KeySet ks = value_keys if isinstance(value_keys, KeySet) else KeySet(value_keys)
    cdef const unsigned char[::1] data = records.data
    offs_a = np.ascontiguousarray(records.offsets, dtype=np.uint64)
    lens_a = np.ascontiguousarray(records.lengths, dtype=np.uint32)
    cdef const uint64_t[::1] offsets = offs_a
    cdef const uint32_t[::1] lengths = lens_a
    cdef Py_ssize_t n = offsets.shape[0], i, nr = 0
    cdef uint64_t size = data.shape[0], off, r, last = 0
    cdef uint32_t ln
    cdef bint want_r = resource_keys is not None, have_last = False
    out_a = np.zeros(n, np.uint64)
    cdef uint64_t[::1] out = out_a
    cdef uint64_t recent[16]
    cdef uint64_t *rks = NULL
    if n == 0:
        return out_a
    if want_r:
        rks = <uint64_t *>malloc(n * sizeof(uint64_t))
        if rks == NULL:
            raise MemoryError()
        for i in range(16):
            recent[i] = 0
    try:
        with nogil:
            for i in range(n):
                off = offsets[i]
                ln = lengths[i]
                if off > size or ln > size - off:
                    continue
                if ln < SPAN_PREFIX:
                    continue
                out[i] = _span_hash(&data[0] + off, ln, &ks.t)
                if want_r:
                    r = le64(&data[0] + off + 48)
                    if have_last and r == last:
                        continue
                    last = r
                    have_last = True
                    if recent[r & 15] == r and r != 0:
                        continue
                    recent[r & 15] = r
                    rks[nr] = r
                    nr += 1
        for i in range(nr):
            resource_keys.add(rks[i])
    finally:
        free(rks)
    return out_a


# ------------------------------------------------------ hash -> verdict id

cdef class ShapeTable:
    """Shape hash -> small int (a verdict's index), open addressing; hash 0
    is never stored (it means "no shape")."""
    cdef uint64_t *keys
    cdef int32_t *vals
    cdef Py_ssize_t cap
    cdef Py_ssize_t count

    def __cinit__(self, Py_ssize_t capacity=1024):
        self.cap = 16
        while self.cap < 2 * capacity:
            self.cap *= 2
        self._alloc()

    cdef _alloc(self):
        self.keys = <uint64_t *>calloc(self.cap, sizeof(uint64_t))
        self.vals = <int32_t *>calloc(self.cap, sizeof(int32_t))
        if self.keys == NULL or self.vals == NULL:
            raise MemoryError()
        self.count = 0

    def __dealloc__(self):
        free(self.keys)
        free(self.vals)

    def __len__(self):
        return self.count

    def clear(self):
        free(self.keys)
        free(self.vals)
        self.keys = NULL
        self.vals = NULL
        self._alloc()

    cdef inline int32_t _get(self, uint64_t h) noexcept nogil:
        cdef Py_ssize_t mask = self.cap - 1
        cdef Py_ssize_t slot = <Py_ssize_t>((h ^ (h >> 29)) & <uint64_t>mask)
        while self.keys[slot]:
            if self.keys[slot] == h:
                return self.vals[slot]
            slot = (slot + 1) & mask
        return -1

    def get(self, uint64_t h):
        return self._get(h) if h else -1

    def add(self, uint64_t h, int32_t value):
        cdef Py_ssize_t mask, slot, i, old_cap
        cdef uint64_t *ok
        cdef int32_t *ov
        if h == 0:
            raise ValueError("hash 0 is not a shape")
        if 2 * (self.count + 1) > self.cap:
            ok, ov, old_cap = self.keys, self.vals, self.cap
            self.cap *= 2
            self._alloc()
            for i in range(old_cap):
                if ok[i]:
                    self._put(ok[i], ov[i])
            free(ok)
            free(ov)
        self._put(h, value)

    cdef inline void _put(self, uint64_t h, int32_t value) noexcept nogil:
        cdef Py_ssize_t mask = self.cap - 1
        cdef Py_ssize_t slot = <Py_ssize_t>((h ^ (h >> 29)) & <uint64_t>mask)
        while self.keys[slot]:
            if self.keys[slot] == h:
                self.vals[slot] = value
                return
            slot = (slot + 1) & mask
        self.keys[slot] = h
        self.vals[slot] = value
        self.count += 1

    def lookup(self, hashes):
        """int32 per hash: its value, or -1 (unknown, or hash 0)."""
        return self._lookup(hashes)[0]

    cdef tuple _lookup(self, hashes):
        cdef const uint64_t[::1] hs = np.ascontiguousarray(hashes, dtype=np.uint64)
        cdef Py_ssize_t n = hs.shape[0], i, misses = 0
        out_a = np.empty(n, np.int32)
        cdef int32_t[::1] out = out_a
        cdef uint64_t h, prev = 0
        cdef int32_t pv = -1
        with nogil:
            for i in range(n):
                h = hs[i]
                if h == 0:
                    pv = -1
                elif h != prev:
                    pv = self._get(h)
                    prev = h
                out[i] = pv
                if pv < 0:
                    misses += 1
        return out_a, misses

    def match(self, records, KeySet keys, resource_keys=None):
        """``span_shapes`` and ``lookup`` in one call: (hashes, values -
        int32, -1 where unknown -, number of unknown)."""
        hashes = span_shapes(records, keys, resource_keys)
        ids, misses = self._lookup(hashes)
        return hashes, ids, misses


def tally(ids):
    """[(value, count)] of the non-negative values in the int32 array
    ``ids``, by value."""
    cdef const int32_t[::1] v = np.ascontiguousarray(ids, dtype=np.int32)
    cdef Py_ssize_t n = v.shape[0], i
    cdef int32_t top = -1
    cdef int64_t *counts
    for i in range(n):
        if v[i] > top:
            top = v[i]
    if top < 0:
        return []
    counts = <int64_t *>calloc(top + 1, sizeof(int64_t))
    if counts == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            if v[i] >= 0:
                counts[v[i]] += 1
        return [(j, counts[j]) for j in range(top + 1) if counts[j]]
    finally:
        free(counts)
