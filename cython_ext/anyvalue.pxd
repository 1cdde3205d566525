# AnyValue and attribute maps on the wire (tags in wire.pxd; the reference is
# write_value / read_value in otelplug/codec/_pycodec.py).  Inline so every
# codec module gets its own copy: compiled module names do not match pxd
# paths, so cdef functions cannot be shared between modules any other way.
#
# Encoding rules (identical in the reference): None, bool, int (int64 range,
# else OverflowError), float, str (UTF-8, lone surrogates kept with
# surrogatepass), bytes/bytearray, mappings (str keys), sequences.  A non-empty
# sequence whose items are all str, all bool, all int or all float gets a
# homogeneous array tag; anything else (mixed, with None, empty) is a generic
# array.  Sequences decode to tuples, mappings to dicts.
from cpython.bool cimport PyBool_Check
from cpython.bytes cimport PyBytes_Check, PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_Check
from cpython.dict cimport PyDict_CheckExact, PyDict_Next
from cpython.float cimport PyFloat_Check, PyFloat_AS_DOUBLE
from cpython.list cimport PyList_CheckExact, PyList_AsTuple
from cpython.long cimport PyLong_Check, PyLong_AsLongLong
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_CheckExact
from cpython.unicode cimport PyUnicode_Check
from libc.stdint cimport uint8_t, uint64_t, int64_t
from libc.string cimport memcpy

from wire cimport *
from wbuf cimport *
from cursor cimport *

cdef extern from "Python.h":
    # NULL (with an exception set) when the string holds lone surrogates
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size)
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)
    void PyErr_Clear()


# -- encoding -----------------------------------------------------------------
cdef inline int wb_str(otp_wbuf *w, object s) except -1:
    """varint length + UTF-8 of the str ``s``."""
    cdef Py_ssize_t n
    cdef const char *p = PyUnicode_AsUTF8AndSize(s, &n)
    if p == NULL:
        PyErr_Clear()
        b = (<str>s).encode("utf-8", "surrogatepass")
        wb_varint(w, <uint64_t>PyBytes_GET_SIZE(b))
        return wb_raw(w, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
    wb_varint(w, <uint64_t>n)
    return wb_raw(w, p, n)


cdef inline int wb_nstr(otp_wbuf *w, object s) except -1:
    """Nullable string: varint (len + 1), 0 for None."""
    cdef Py_ssize_t n
    cdef const char *p
    if s is None:
        return wb_u8(w, 0)
    p = PyUnicode_AsUTF8AndSize(s, &n)
    if p == NULL:
        PyErr_Clear()
        b = (<str>s).encode("utf-8", "surrogatepass")
        wb_varint(w, <uint64_t>PyBytes_GET_SIZE(b) + 1)
        return wb_raw(w, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
    wb_varint(w, <uint64_t>n + 1)
    return wb_raw(w, p, n)


cdef inline int scalar_tag(object v) noexcept:
    """The homogeneous-array tag ``v`` allows, or 0."""
    if PyBool_Check(v):
        return T_BOOL_ARRAY
    if PyLong_Check(v):
        return T_INT_ARRAY
    if PyFloat_Check(v):
        return T_DOUBLE_ARRAY
    if PyUnicode_Check(v):
        return T_STR_ARRAY
    return 0


cdef inline object plain_dict(object attrs):
    """A dict with ``attrs``'s items in order.  The SDK's BoundedAttributes
    keeps them in a plain dict ``_dict``: use it directly (its Mapping
    protocol walks keys in Python)."""
    if PyDict_CheckExact(attrs):
        return attrs
    d = getattr(attrs, "_dict", None)
    if d is not None and PyDict_CheckExact(d) and len(d) == len(attrs):
        return d
    return dict(attrs.items())


cdef inline int wb_kvlist(otp_wbuf *w, object attrs, int depth) except -1:
    cdef Py_ssize_t pos = 0
    cdef PyObject *k
    cdef PyObject *v
    if attrs is None:
        return wb_u8(w, 0)
    d = plain_dict(attrs)
    wb_varint(w, <uint64_t>len(d))
    while PyDict_Next(d, &pos, &k, &v):
        if not PyUnicode_Check(<object>k):
            raise TypeError("attribute keys must be str")
        wb_str(w, <object>k)
        wb_value(w, <object>v, depth)
    return 0


cdef inline int wb_sequence(otp_wbuf *w, object seq, int depth) except -1:
    cdef Py_ssize_t i, n
    cdef int tag = 0
    if not (PyTuple_CheckExact(seq) or PyList_CheckExact(seq)):
        seq = tuple(seq)
    n = len(seq)
    if n:
        tag = scalar_tag(seq[0])
        if tag:
            for i in range(1, n):
                if scalar_tag(seq[i]) != tag:
                    tag = 0
                    break
    if tag == 0:
        wb_u8(w, T_ARRAY)
        wb_varint(w, <uint64_t>n)
        for i in range(n):
            wb_value(w, seq[i], depth + 1)
        return 0
    wb_u8(w, <uint8_t>tag)
    wb_varint(w, <uint64_t>n)
    if tag == T_STR_ARRAY:
        for i in range(n):
            wb_str(w, seq[i])
    elif tag == T_BOOL_ARRAY:
        for i in range(n):
            wb_u8(w, 1 if seq[i] else 0)
    elif tag == T_INT_ARRAY:
        for i in range(n):
            wb_svarint(w, PyLong_AsLongLong(seq[i]))
    else:
        for i in range(n):
            wb_f64(w, PyFloat_AS_DOUBLE(seq[i]))
    return 0


cdef inline int wb_value(otp_wbuf *w, object v, int depth) except -1:
    if depth > MAX_DEPTH:
        raise ValueError("AnyValue nested too deeply")
    if v is None:
        return wb_u8(w, T_EMPTY)
    if PyBool_Check(v):
        return wb_u8(w, T_TRUE if v is True else T_FALSE)
    if PyLong_Check(v):
        wb_u8(w, T_INT)
        return wb_svarint(w, PyLong_AsLongLong(v))
    if PyFloat_Check(v):
        wb_u8(w, T_DOUBLE)
        return wb_f64(w, PyFloat_AS_DOUBLE(v))
    if PyUnicode_Check(v):
        wb_u8(w, T_STR)
        return wb_str(w, v)
    if PyBytes_Check(v) or PyByteArray_Check(v):
        b = bytes(v)
        wb_u8(w, T_BYTES)
        wb_varint(w, <uint64_t>PyBytes_GET_SIZE(b))
        return wb_raw(w, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
    if PyDict_CheckExact(v) or PyTuple_CheckExact(v) or PyList_CheckExact(v):
        pass
    else:
        from collections.abc import Mapping, Sequence
        if isinstance(v, Mapping):
            wb_u8(w, T_KVLIST)
            return wb_kvlist(w, v, depth + 1)
        if not isinstance(v, Sequence):
            raise TypeError(f"unsupported attribute/AnyValue type {type(v).__name__}")
        return wb_sequence(w, v, depth)
    if PyDict_CheckExact(v):
        wb_u8(w, T_KVLIST)
        return wb_kvlist(w, v, depth + 1)
    return wb_sequence(w, v, depth)


cdef inline int wb_number(otp_wbuf *w, object v) except -1:
    """Metric numbers: tag + i64 for ints, tag + f64 otherwise."""
    if PyLong_Check(v) and not PyBool_Check(v):
        wb_u8(w, T_INT)
        return wb_u64(w, <uint64_t>PyLong_AsLongLong(v))
    wb_u8(w, T_DOUBLE)
    return wb_f64(w, float(v))


cdef inline int wb_id(otp_wbuf *w, object v, Py_ssize_t n) except -1:
    """An id as ``n`` big-endian bytes (OTLP's representation)."""
    cdef unsigned char *p = wb_reserve(w, n)
    cdef uint64_t x
    cdef Py_ssize_t i
    if n == 8:
        x = <uint64_t>v if v else 0
        for i in range(8):
            p[7 - i] = <unsigned char>(x >> (8 * i))
        return 0
    b = (v or 0).to_bytes(n, "big")
    memcpy(p, PyBytes_AS_STRING(b), n)
    return 0


# -- decoding -----------------------------------------------------------------
cdef inline object cur_str(otp_cursor *c):
    cdef uint64_t n = cur_varint(c)
    cdef const unsigned char *p = cur_take(c, n)
    if p == NULL:
        return ""
    return PyUnicode_DecodeUTF8(<const char *>p, <Py_ssize_t>n, "surrogatepass")


cdef inline object cur_nstr(otp_cursor *c):
    cdef uint64_t n = cur_varint(c)
    cdef const unsigned char *p
    if n == 0:
        return None
    p = cur_take(c, n - 1)
    if p == NULL:
        return None
    return PyUnicode_DecodeUTF8(<const char *>p, <Py_ssize_t>(n - 1), "surrogatepass")


cdef inline object cur_id(otp_cursor *c, Py_ssize_t n):
    cdef const unsigned char *p = cur_take(c, n)
    cdef uint64_t x = 0
    cdef Py_ssize_t i
    if p == NULL:
        return 0
    if n == 8:
        for i in range(8):
            x = (x << 8) | p[i]
        return x
    return int.from_bytes(PyBytes_FromStringAndSize(<const char *>p, n), "big")


cdef inline object cur_kvlist(otp_cursor *c, int depth):
    cdef uint64_t i, n = cur_count(c)
    out = {}
    for i in range(n):
        k = cur_str(c)
        out[k] = cur_value(c, depth)
        if c.err:
            break
    return out


cdef inline object cur_value(otp_cursor *c, int depth):
    cdef uint8_t tag = cur_u8(c)
    cdef uint64_t i, n
    cdef const unsigned char *p
    if c.err:
        return None
    if depth > MAX_DEPTH:
        c.err = 1
        return None
    if tag == T_STR:
        return cur_str(c)
    if tag == T_INT:
        return cur_svarint(c)
    if tag == T_DOUBLE:
        return cur_f64(c)
    if tag == T_TRUE:
        return True
    if tag == T_FALSE:
        return False
    if tag == T_EMPTY:
        return None
    if tag == T_BYTES:
        n = cur_varint(c)
        p = cur_take(c, n)
        return PyBytes_FromStringAndSize(<const char *>p, n) if p != NULL else b""
    if tag == T_KVLIST:
        return cur_kvlist(c, depth + 1)
    n = cur_count(c)
    out = []
    if tag == T_STR_ARRAY:
        for i in range(n):
            out.append(cur_str(c))
    elif tag == T_INT_ARRAY:
        for i in range(n):
            out.append(cur_svarint(c))
    elif tag == T_DOUBLE_ARRAY:
        for i in range(n):
            out.append(cur_f64(c))
    elif tag == T_BOOL_ARRAY:
        for i in range(n):
            out.append(cur_u8(c) != 0)
    elif tag == T_ARRAY:
        for i in range(n):
            out.append(cur_value(c, depth + 1))
            if c.err:
                break
    else:
        c.err = 1
        return None
    return PyList_AsTuple(out)


cdef inline object cur_number(otp_cursor *c):
    cdef uint8_t tag = cur_u8(c)
    if tag == T_INT:
        return cur_i64(c)
    if tag != T_DOUBLE:
        c.err = 1
    return cur_f64(c)
