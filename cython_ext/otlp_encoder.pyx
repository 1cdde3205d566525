# cython: language_level=3, cdivision=True
"""OTLP protobuf written straight from ring records.

``encode_traces(records)`` gives the serialised ExportTraceServiceRequest
for a RecordSet of span records (``encode_logs`` the ExportLogsServiceRequest
for log records): the bytes ``otelplug.otlp.encode.traces_request
(records).SerializeToString()`` would give (tests/sidecar/test_otlp_encoder.py
holds it to that), without decoding a record into Python objects or building
protobuf messages: each record is transcoded field by field, its AnyValues
tag by tag, into one output buffer: ~0.3-0.4 us a span against ~25-40 us
for the reference (bench/README.md, "Sidecar throughput").

Grouping is the reference's: ResourceSpans per resource key, ScopeSpans per
scope key within it, both in first-seen order, spans in record order.
Resource and scope definitions are transcoded once per key and cached
across calls (keys are content hashes, and the cache checks the payload).

Where we differ from the reference, on purpose:
- a structurally corrupt record (truncated, counts past its end, unknown
  AnyValue tag) is left out and counted (``stats()``, a warning), instead of
  failing the whole batch; ``strict=True`` raises ValueError like the
  reference.  The shm receiver already skips records the ring marks corrupt,
  so this is a second line of defence.
- strings that are not strict UTF-8 (lone surrogates, which the ring format
  keeps, or damaged bytes) are written with U+FFFD replacements, as Python's
  "replace" decoding does; the reference raises (UnicodeEncodeError), and
  passing them through would make the receiver reject the whole request.
- a definition that cannot be decoded is treated like a missing one (empty
  resource/scope, counted), where the reference raises.
"""
import logging

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t, int64_t

from wire cimport *
from record_layout cimport *
from wbuf cimport *
from cursor cimport *
from pbwrite cimport *

import numpy as np

log = logging.getLogger("otelplug.otlp")

# -- field keys: (field number << 3) | wire type -------------------------------
# common.proto
cdef enum:
    K_ANY_STRING = 0x0a        # AnyValue.string_value = 1
    K_ANY_BOOL = 0x10          # bool_value = 2
    K_ANY_INT = 0x18           # int_value = 3
    K_ANY_DOUBLE = 0x21        # double_value = 4 (fixed64)
    K_ANY_ARRAY = 0x2a         # array_value = 5
    K_ANY_KVLIST = 0x32        # kvlist_value = 6
    K_ANY_BYTES = 0x3a         # bytes_value = 7
    K_LIST_VALUES = 0x0a       # ArrayValue.values = 1, KeyValueList.values = 1
    K_KV_KEY = 0x0a            # KeyValue.key = 1
    K_KV_VALUE = 0x12          # KeyValue.value = 2
    K_RES_ATTRS = 0x0a         # Resource.attributes = 1
    K_RES_DROPPED = 0x10       # Resource.dropped_attributes_count = 2
    K_SCOPE_NAME = 0x0a        # InstrumentationScope.name = 1
    K_SCOPE_VERSION = 0x12     # version = 2
    K_SCOPE_ATTRS = 0x1a       # attributes = 3
    K_SCOPE_DROPPED = 0x20     # dropped_attributes_count = 4
# trace.proto / trace_service.proto
cdef enum:
    K_REQ_RESOURCE_SPANS = 0x0a    # ExportTraceServiceRequest.resource_spans = 1
    K_RS_RESOURCE = 0x0a           # ResourceSpans.resource = 1
    K_RS_SCOPE_SPANS = 0x12        # scope_spans = 2
    K_RS_SCHEMA_URL = 0x1a         # schema_url = 3
    K_SS_SCOPE = 0x0a              # ScopeSpans.scope = 1
    K_SS_SPANS = 0x12              # spans = 2
    K_SS_SCHEMA_URL = 0x1a         # schema_url = 3
    K_SPAN_TRACE_ID = 0x0a         # Span.trace_id = 1
    K_SPAN_SPAN_ID = 0x12          # span_id = 2
    K_SPAN_TRACE_STATE = 0x1a      # trace_state = 3
    K_SPAN_PARENT = 0x22           # parent_span_id = 4
    K_SPAN_NAME = 0x2a             # name = 5
    K_SPAN_KIND = 0x30             # kind = 6
    K_SPAN_START = 0x39            # start_time_unix_nano = 7 (fixed64)
    K_SPAN_END = 0x41              # end_time_unix_nano = 8 (fixed64)
    K_SPAN_ATTRS = 0x4a            # attributes = 9
    K_SPAN_DROPPED_ATTRS = 0x50    # dropped_attributes_count = 10
    K_SPAN_EVENTS = 0x5a           # events = 11
    K_SPAN_DROPPED_EVENTS = 0x60   # dropped_events_count = 12
    K_SPAN_LINKS = 0x6a            # links = 13
    K_SPAN_DROPPED_LINKS = 0x70    # dropped_links_count = 14
    K_SPAN_STATUS = 0x7a           # status = 15
    K_SPAN_FLAGS = 0x85            # flags = 16 (fixed32): key is the varint 0x85 0x01
    K_EVENT_TIME = 0x09            # Span.Event.time_unix_nano = 1 (fixed64)
    K_EVENT_NAME = 0x12            # name = 2
    K_EVENT_ATTRS = 0x1a           # attributes = 3
    K_EVENT_DROPPED = 0x20         # dropped_attributes_count = 4
    K_LINK_TRACE_ID = 0x0a         # Span.Link.trace_id = 1
    K_LINK_SPAN_ID = 0x12          # span_id = 2
    K_LINK_TRACE_STATE = 0x1a      # trace_state = 3
    K_LINK_ATTRS = 0x22            # attributes = 4
    K_LINK_DROPPED = 0x28          # dropped_attributes_count = 5
    K_LINK_FLAGS = 0x35            # flags = 6 (fixed32)
    K_STATUS_MESSAGE = 0x12        # Status.message = 2
    K_STATUS_CODE = 0x18           # code = 3

# logs.proto / logs_service.proto: ResourceLogs and ScopeLogs use the same
# field numbers as ResourceSpans and ScopeSpans (so _encode serves both)
cdef enum:
    K_SL_LOG_RECORDS = 0x12        # ScopeLogs.log_records = 2
    K_LOG_TIME = 0x09              # LogRecord.time_unix_nano = 1 (fixed64)
    K_LOG_SEVERITY = 0x10          # severity_number = 2
    K_LOG_SEVERITY_TEXT = 0x1a     # severity_text = 3
    K_LOG_BODY = 0x2a              # body = 5
    K_LOG_ATTRS = 0x32             # attributes = 6
    K_LOG_DROPPED = 0x38           # dropped_attributes_count = 7
    K_LOG_FLAGS = 0x45             # flags = 8 (fixed32)
    K_LOG_TRACE_ID = 0x4a          # trace_id = 9
    K_LOG_SPAN_ID = 0x52           # span_id = 10
    K_LOG_OBSERVED = 0x59          # observed_time_unix_nano = 11 (fixed64)
    K_LOG_EVENT_NAME = 0x62        # event_name = 12

# length bytes kept by pb_open: most attributes and events are < 128 bytes,
# most spans < 16 kB; the groups hold whole batches
cdef enum:
    HINT_SMALL = 1
    HINT_SPAN = 2
    HINT_GROUP = 3

# records skipped as corrupt, definitions missing or undecodable (since import)
cdef Py_ssize_t _skipped_total = 0
cdef Py_ssize_t _missing_defs_total = 0


def stats():
    """Counters since import: corrupt records skipped, and resource/scope
    definitions that were missing or undecodable."""
    return {"skipped_records": _skipped_total, "missing_definitions": _missing_defs_total}


# -- AnyValue and attributes ----------------------------------------------------
cdef int _any(otp_wbuf *w, otp_cursor *c, int depth) except -1:
    """The record's next tagged value as the content of an OTLP AnyValue
    (the caller opened the message).  Mirrors cur_value in anyvalue.pxd:
    the same depth limit, the same corrupt cases (it sets c.err)."""
    cdef uint8_t tag = cur_u8(c)
    cdef uint64_t n, i
    cdef const unsigned char *p
    cdef Py_ssize_t arr, item
    if c.err:
        return 0
    if depth > MAX_DEPTH:
        c.err = 1
        return 0
    if tag == T_STR:
        n = cur_varint(c)
        p = cur_take(c, n)
        if p != NULL:
            pb_str(w, K_ANY_STRING, p, <Py_ssize_t>n, True)
    elif tag == T_INT:
        pb_key(w, K_ANY_INT)
        wb_varint(w, <uint64_t>cur_svarint(c))
    elif tag == T_DOUBLE:
        p = cur_take(c, 8)
        if p != NULL:
            # the record's f64 is little-endian, as protobuf's fixed64
            pb_key(w, K_ANY_DOUBLE)
            wb_raw(w, p, 8)
    elif tag == T_TRUE or tag == T_FALSE:
        pb_key(w, K_ANY_BOOL)
        wb_u8(w, 1 if tag == T_TRUE else 0)
    elif tag == T_EMPTY:
        pass    # an AnyValue with nothing set
    elif tag == T_BYTES:
        n = cur_varint(c)
        p = cur_take(c, n)
        if p != NULL:
            pb_bytes(w, K_ANY_BYTES, p, <Py_ssize_t>n, True)
    elif tag == T_KVLIST:
        arr = pb_open(w, K_ANY_KVLIST, HINT_SMALL)
        _kvlist(w, c, K_LIST_VALUES, depth + 1)
        pb_close(w, arr, HINT_SMALL)
    elif tag == T_ARRAY or tag == T_STR_ARRAY or tag == T_INT_ARRAY or tag == T_DOUBLE_ARRAY \
            or tag == T_BOOL_ARRAY:
        n = cur_count(c)
        arr = pb_open(w, K_ANY_ARRAY, HINT_SMALL)
        for i in range(n):
            item = pb_open(w, K_LIST_VALUES, HINT_SMALL)
            if tag == T_STR_ARRAY:
                n = cur_varint(c)
                p = cur_take(c, n)
                if p != NULL:
                    pb_str(w, K_ANY_STRING, p, <Py_ssize_t>n, True)
            elif tag == T_INT_ARRAY:
                pb_key(w, K_ANY_INT)
                wb_varint(w, <uint64_t>cur_svarint(c))
            elif tag == T_DOUBLE_ARRAY:
                p = cur_take(c, 8)
                if p != NULL:
                    pb_key(w, K_ANY_DOUBLE)
                    wb_raw(w, p, 8)
            elif tag == T_BOOL_ARRAY:
                pb_key(w, K_ANY_BOOL)
                wb_u8(w, 1 if cur_u8(c) else 0)
            else:
                _any(w, c, depth + 1)
            pb_close(w, item, HINT_SMALL)
            if c.err:
                break
        pb_close(w, arr, HINT_SMALL)
    else:
        c.err = 1
    return 0


cdef int _kvlist(otp_wbuf *w, otp_cursor *c, uint32_t key, int depth) except -1:
    """The record's next attribute map as repeated KeyValue field ``key``."""
    cdef uint64_t i, n = cur_count(c), klen
    cdef const unsigned char *k
    cdef Py_ssize_t kv, val
    for i in range(n):
        klen = cur_varint(c)
        k = cur_take(c, klen)
        if k == NULL:
            return 0
        kv = pb_open(w, key, HINT_SMALL)
        pb_str(w, K_KV_KEY, k, <Py_ssize_t>klen, False)
        # the reference always sets value, even to an empty AnyValue
        val = pb_open(w, K_KV_VALUE, HINT_SMALL)
        _any(w, c, depth)
        pb_close(w, val, HINT_SMALL)
        pb_close(w, kv, HINT_SMALL)
        if c.err:
            return 0
    return 0


cdef inline int _nstr(otp_wbuf *w, otp_cursor *c, uint32_t key) except -1:
    """A nullable record string (varint len + 1, 0 = None) as a string field;
    None and "" are both proto3's default and left out."""
    cdef uint64_t n = cur_varint(c)
    cdef const unsigned char *p
    if n == 0:
        return 0
    p = cur_take(c, n - 1)
    if p != NULL:
        pb_str(w, key, p, <Py_ssize_t>(n - 1), False)
    return 0


cdef inline int _dropped(otp_wbuf *w, otp_cursor *c, uint32_t key) except -1:
    """A varint dropped count as a uint32 field; more than fits is corrupt
    (the reference's protobuf would raise)."""
    cdef uint64_t n = cur_varint(c)
    if n > 0xFFFFFFFFULL:
        c.err = 1
        return 0
    return pb_uint(w, key, n)


# -- definitions ----------------------------------------------------------------
cdef dict _def_cache = {}      # key -> (payload bytes, kind, message content, schema_url)
cdef enum:
    DEF_CACHE_MAX = 4096


cdef object _transcode_definition(bytes payload):
    """(kind, message content, schema_url UTF-8) for a definition payload;
    None if it is corrupt.  Resource and InstrumentationScope contents."""
    cdef otp_cursor c
    cdef otp_wbuf w
    cdef otp_wbuf sw
    cdef uint8_t kind
    cdef uint64_t n
    cdef const unsigned char *p
    if PyBytes_GET_SIZE(payload) < 2:
        return None
    cur_init(&c, <const unsigned char *>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
    kind = cur_u8(&c)
    cur_u8(&c)
    wb_init(&w)
    wb_init(&sw)
    try:
        if kind == DEF_RESOURCE:
            _nstr(&sw, &c, 0x0a)
            _kvlist(&w, &c, K_RES_ATTRS, 0)
            _dropped(&w, &c, K_RES_DROPPED)
        elif kind == DEF_SCOPE:
            n = cur_varint(&c)
            p = cur_take(&c, n)
            if p != NULL:
                pb_str(&w, K_SCOPE_NAME, p, <Py_ssize_t>n, False)
            _nstr(&w, &c, K_SCOPE_VERSION)
            _nstr(&sw, &c, 0x0a)
            _kvlist(&w, &c, K_SCOPE_ATTRS, 0)
            _dropped(&w, &c, K_SCOPE_DROPPED)
        else:
            return None
        if c.err:
            return None
        # sw holds the schema url as a field "0x0a len bytes": keep the bytes
        schema = b""
        if sw.len:
            c2 = wb_bytes(&sw)
            schema = _strip_key(c2)
        return (kind, wb_bytes(&w), schema)
    finally:
        wb_free(&w)
        wb_free(&sw)


cdef bytes _strip_key(bytes field):
    """The value of a one-field "key, varint length, bytes" encoding."""
    cdef otp_cursor c
    cur_init(&c, <const unsigned char *>PyBytes_AS_STRING(field), PyBytes_GET_SIZE(field))
    cur_u8(&c)
    n = cur_varint(&c)
    return field[c.pos:c.pos + n]


cdef object _definition(object defs, uint64_t key, uint8_t want, list missing):
    """(message content, schema_url) of definition ``key`` of kind ``want``;
    (b"", b"") for key 0; for a missing or corrupt one too, counted in
    ``missing`` (as the reference counts and warns)."""
    if key == 0:
        return (b"", b"")
    payload = defs.get(key)
    if payload is None:
        missing[0] += 1
        return (b"", b"")
    if not isinstance(payload, bytes):
        payload = bytes(payload)
    hit = _def_cache.get(key)
    if hit is None or hit[0] != payload:
        t = _transcode_definition(payload)
        if len(_def_cache) >= DEF_CACHE_MAX:
            _def_cache.clear()
        hit = _def_cache[key] = (payload, t)
    t = hit[1]
    if t is None or t[0] != want:
        missing[1] += 1
        return (b"", b"")
    return (t[1], t[2])


# -- grouping -------------------------------------------------------------------
cdef object _group(const unsigned char[::1] data, const uint64_t[::1] offs,
                   const uint32_t[::1] lens, Py_ssize_t min_len, Py_ssize_t rkey_at,
                   Py_ssize_t skey_at, int32_t[::1] nxt):
    """Group records by (resource key, scope key) in first-seen order.
    Returns (groups, heads, too_short): ``groups`` is [(rkey, skey)] in the
    order OTLP nests them (resources first-seen, scopes first-seen within
    their resource), ``heads[g]`` the first record of group g, ``nxt[i]``
    the record after i in its group (-1 ends).  Records too short to hold
    the fixed prefix are in no group."""
    cdef Py_ssize_t i, n = offs.shape[0], size = data.shape[0]
    cdef uint64_t off, rk, sk, last_rk = 0, last_sk = 0
    cdef int32_t g, last_g = -1
    cdef const unsigned char *p
    cdef Py_ssize_t too_short = 0
    index = {}
    keys = []
    heads = []
    tails = []
    cdef list tails_l = tails
    for i in range(n):
        off = offs[i]
        nxt[i] = -1
        if lens[i] < min_len or off + lens[i] > <uint64_t>size:
            too_short += 1
            continue
        p = &data[0] + off
        rk = le64(p + rkey_at)
        sk = le64(p + skey_at)
        # runs of records share keys (one producer's batch): skip the dict
        if last_g < 0 or rk != last_rk or sk != last_sk:
            k = (rk, sk)
            got = index.get(k)
            if got is None:
                g = <int32_t>len(keys)
                index[k] = g
                keys.append(k)
                heads.append(i)
                tails.append(i)
                last_g, last_rk, last_sk = g, rk, sk
                continue
            g = got
            last_g, last_rk, last_sk = g, rk, sk
        nxt[<Py_ssize_t>tails_l[last_g]] = <int32_t>i
        tails_l[last_g] = i
    # resources in first-seen order, then their scopes in first-seen order
    rorder = {}
    for k in keys:
        if k[0] not in rorder:
            rorder[k[0]] = len(rorder)
    order = sorted(range(len(keys)), key=lambda j: (rorder[keys[j][0]], j))
    return [keys[j] for j in order], [heads[j] for j in order], too_short


cdef inline Py_ssize_t _estimate(const uint32_t[::1] lens):
    cdef Py_ssize_t i, total = 4096
    for i in range(lens.shape[0]):
        total += lens[i] + 48
    return total + total // 4


cdef class _Input:
    """The RecordSet's buffer and columns as typed views."""
    cdef const unsigned char[::1] data
    cdef const uint64_t[::1] offs
    cdef const uint32_t[::1] lens
    cdef int32_t[::1] nxt
    cdef Py_ssize_t n

    def __cinit__(self, records):
        self.offs = np.ascontiguousarray(records.offsets, dtype=np.uint64)
        self.lens = np.ascontiguousarray(records.lengths, dtype=np.uint32)
        self.n = self.offs.shape[0]
        buf = records.buf
        if self.n:
            self.data = buf if buf is not None and len(buf) else b"\0"
        else:
            self.data = b"\0"
        self.nxt = np.empty(self.n, dtype=np.int32)


# -- spans ----------------------------------------------------------------------
cdef int _span(otp_wbuf *w, const unsigned char *rec, Py_ssize_t length) except -1:
    """One span record as a ScopeSpans.spans field; returns 1 (and writes
    nothing) if the record is corrupt.  Field order follows field numbers,
    as protobuf serialises them, so the bytes match the reference's."""
    cdef otp_cursor c
    cdef const unsigned char *pre
    cdef const unsigned char *p
    cdef const unsigned char *desc = NULL
    cdef uint64_t n, desc_len = 0
    cdef uint32_t flags, name_len, n_events, n_links, i, otlp_flags, lflags
    cdef Py_ssize_t mark = w.len, span, sub
    if length < SPAN_PREFIX:
        return 1
    cur_init(&c, rec, length)
    pre = cur_take(&c, SPAN_PREFIX)
    flags = le32(pre + SPAN_FLAGS_AT)
    name_len = le32(pre + SPAN_NAME_LEN_AT)
    n_events = le32(pre + SPAN_EVENT_COUNT_AT)
    n_links = le32(pre + SPAN_LINK_COUNT_AT)
    name = cur_take(&c, name_len)
    if name == NULL:
        return 1
    span = pb_open(w, K_SS_SPANS, HINT_SPAN)
    if not pb_all_zero(pre, 16):
        pb_bytes(w, K_SPAN_TRACE_ID, pre, 16, False)
    if not pb_all_zero(pre + SPAN_SPAN_ID_AT, 8):
        pb_bytes(w, K_SPAN_SPAN_ID, pre + SPAN_SPAN_ID_AT, 8, False)
    _nstr(w, &c, K_SPAN_TRACE_STATE)
    if flags & FLAG_HAS_PARENT and not pb_all_zero(pre + SPAN_PARENT_SPAN_ID_AT, 8):
        pb_bytes(w, K_SPAN_PARENT, pre + SPAN_PARENT_SPAN_ID_AT, 8, False)
    pb_str(w, K_SPAN_NAME, name, name_len, False)
    pb_uint(w, K_SPAN_KIND, pre[SPAN_KIND_AT])
    pb_fixed64(w, K_SPAN_START, le64(pre + SPAN_START_AT))
    pb_fixed64(w, K_SPAN_END, le64(pre + SPAN_END_AT))
    # the status description comes before the attributes in the record, but
    # Status is field 15: remember where it is
    n = cur_varint(&c)
    if n:
        desc_len = n - 1
        desc = cur_take(&c, desc_len)
    _kvlist(w, &c, K_SPAN_ATTRS, 0)
    pb_uint(w, K_SPAN_DROPPED_ATTRS, le32(pre + SPAN_DROPPED_ATTRIBUTES_AT))
    if n_events > <uint64_t>cur_left(&c) or n_links > <uint64_t>cur_left(&c):
        c.err = 1
    for i in range(n_events):
        if c.err:
            break
        sub = pb_open(w, K_SPAN_EVENTS, HINT_SMALL)
        pb_fixed64(w, K_EVENT_TIME, cur_u64(&c))
        n = cur_varint(&c)
        p = cur_take(&c, n)
        if p != NULL:
            pb_str(w, K_EVENT_NAME, p, <Py_ssize_t>n, False)
        _kvlist(w, &c, K_EVENT_ATTRS, 0)
        _dropped(w, &c, K_EVENT_DROPPED)
        pb_close(w, sub, HINT_SMALL)
    pb_uint(w, K_SPAN_DROPPED_EVENTS, le32(pre + SPAN_DROPPED_EVENTS_AT))
    for i in range(n_links):
        if c.err:
            break
        sub = pb_open(w, K_SPAN_LINKS, HINT_SMALL)
        p = cur_take(&c, 24)
        if p == NULL:
            break
        if not pb_all_zero(p, 16):
            pb_bytes(w, K_LINK_TRACE_ID, p, 16, False)
        if not pb_all_zero(p + 16, 8):
            pb_bytes(w, K_LINK_SPAN_ID, p + 16, 8, False)
        lflags = cur_u32(&c)
        _nstr(w, &c, K_LINK_TRACE_STATE)
        _kvlist(w, &c, K_LINK_ATTRS, 0)
        _dropped(w, &c, K_LINK_DROPPED)
        # a link's context always knows whether it is remote
        pb_fixed32(w, K_LINK_FLAGS, (lflags & FLAG_TRACE_FLAGS_MASK) | FLAG_HAS_IS_REMOTE
                   | (lflags & FLAG_IS_REMOTE))
        pb_close(w, sub, HINT_SMALL)
    pb_uint(w, K_SPAN_DROPPED_LINKS, le32(pre + SPAN_DROPPED_LINKS_AT))
    if c.err:
        w.len = mark
        return 1
    # Status is always set by the reference (an empty message when unset)
    sub = pb_open(w, K_SPAN_STATUS, HINT_SMALL)
    if desc != NULL:
        pb_str(w, K_STATUS_MESSAGE, desc, <Py_ssize_t>desc_len, False)
    pb_uint(w, K_STATUS_CODE, pre[SPAN_STATUS_AT])
    pb_close(w, sub, HINT_SMALL)
    # W3C trace flags, and whether the parent is remote: known for every
    # span (a root span's parent is not remote), as the OTel SDKs write it
    otlp_flags = (flags & FLAG_TRACE_FLAGS_MASK) | FLAG_HAS_IS_REMOTE
    if flags & FLAG_HAS_PARENT:
        otlp_flags |= flags & FLAG_IS_REMOTE
    if otlp_flags:
        wb_u8(w, K_SPAN_FLAGS)
        wb_u8(w, 0x01)
        wb_u32(w, otlp_flags)
    pb_close(w, span, HINT_SPAN)
    return 0


# -- log records ----------------------------------------------------------------
cdef int _log(otp_wbuf *w, const unsigned char *rec, Py_ssize_t length) except -1:
    """One log record as a ScopeLogs.log_records field; 1 if corrupt.  As
    ``log_pb`` in otelplug/otlp/encode.py: absent time, severity and trace
    flags are 0 (left out); the body is always set, if only to an empty
    AnyValue."""
    cdef otp_cursor c
    cdef const unsigned char *pre
    cdef const unsigned char *sev_text = NULL
    cdef const unsigned char *event_name = NULL
    cdef uint64_t n, sev_len = 0, event_len = 0
    cdef uint32_t flags
    cdef Py_ssize_t mark = w.len, rec_start, sub
    if length < LOG_PREFIX:
        return 1
    cur_init(&c, rec, length)
    pre = cur_take(&c, LOG_PREFIX)
    flags = le32(pre + LOG_FLAGS_AT)
    # severity text and event name come first in the record, but are
    # fields 3 and 12: remember where they are
    n = cur_varint(&c)
    if n:
        sev_len = n - 1
        sev_text = cur_take(&c, sev_len)
    n = cur_varint(&c)
    if n:
        event_len = n - 1
        event_name = cur_take(&c, event_len)
    if c.err:
        return 1
    rec_start = pb_open(w, K_SL_LOG_RECORDS, HINT_SPAN)
    if flags & LOG_HAS_TIME:
        pb_fixed64(w, K_LOG_TIME, le64(pre + LOG_TIME_AT))
    if flags & LOG_HAS_SEVERITY:
        pb_uint(w, K_LOG_SEVERITY, pre[LOG_SEVERITY_AT])
    if sev_text != NULL:
        pb_str(w, K_LOG_SEVERITY_TEXT, sev_text, <Py_ssize_t>sev_len, False)
    sub = pb_open(w, K_LOG_BODY, HINT_SMALL)
    _any(w, &c, 0)
    pb_close(w, sub, HINT_SMALL)
    _kvlist(w, &c, K_LOG_ATTRS, 0)
    if c.err:
        w.len = mark
        return 1
    pb_uint(w, K_LOG_DROPPED, le32(pre + LOG_DROPPED_ATTRIBUTES_AT))
    if flags & LOG_HAS_TRACE_FLAGS:
        pb_fixed32(w, K_LOG_FLAGS, flags & FLAG_TRACE_FLAGS_MASK)
    if not pb_all_zero(pre, 16):
        pb_bytes(w, K_LOG_TRACE_ID, pre, 16, False)
    if not pb_all_zero(pre + LOG_SPAN_ID_AT, 8):
        pb_bytes(w, K_LOG_SPAN_ID, pre + LOG_SPAN_ID_AT, 8, False)
    pb_fixed64(w, K_LOG_OBSERVED, le64(pre + LOG_OBSERVED_AT))
    if event_name != NULL:
        pb_str(w, K_LOG_EVENT_NAME, event_name, <Py_ssize_t>event_len, False)
    pb_close(w, rec_start, HINT_SPAN)
    return 0


ctypedef int (*record_fn)(otp_wbuf *w, const unsigned char *rec, Py_ssize_t length) except -1


cdef bytes _encode(records, record_fn write_record, Py_ssize_t min_len, Py_ssize_t rkey_at,
                   Py_ssize_t skey_at, bint strict, str what):
    """The Export*ServiceRequest for ``records``: ResourceX { resource = 1,
    ScopeX = 2 { scope = 1, items = 2, schema_url = 3 }, schema_url = 3 },
    the same nesting and field numbers for traces, logs and metrics."""
    global _skipped_total, _missing_defs_total
    cdef _Input inp = _Input(records)
    cdef otp_wbuf w
    cdef Py_ssize_t i, res_start = -1, res_mark = 0, scope_start, scope_mark, written
    cdef Py_ssize_t skipped = 0
    cdef int32_t r
    cdef uint64_t cur_rk = 0
    cdef bint in_res = False
    if inp.n == 0:
        return b""
    groups, heads, skipped = _group(inp.data, inp.offs, inp.lens, min_len, rkey_at, skey_at, inp.nxt)
    if skipped and strict:
        raise ValueError(f"truncated or corrupt {what} record")
    defs = records.defs
    missing = [0, 0]
    res_schema = b""
    wb_init(&w)
    try:
        wb_grow(&w, _estimate(inp.lens))
        for gi in range(len(groups)):
            rk, sk = groups[gi]
            if not in_res or rk != cur_rk:
                if in_res:
                    _close_resource(&w, res_start, res_mark, res_schema)
                # a new ResourceX: its resource now, its schema_url at the end
                res_mark = w.len
                res_start = pb_open(&w, K_REQ_RESOURCE_SPANS, HINT_GROUP)
                content, res_schema = _definition(defs, rk, DEF_RESOURCE, missing)
                pb_bytes(&w, K_RS_RESOURCE, <const unsigned char *>PyBytes_AS_STRING(content),
                         PyBytes_GET_SIZE(content), True)
                cur_rk = rk
                in_res = True
            scope_mark = w.len
            scope_start = pb_open(&w, K_RS_SCOPE_SPANS, HINT_GROUP)
            content, schema = _definition(defs, sk, DEF_SCOPE, missing)
            pb_bytes(&w, K_SS_SCOPE, <const unsigned char *>PyBytes_AS_STRING(content),
                     PyBytes_GET_SIZE(content), True)
            written = 0
            r = heads[gi]
            while r >= 0:
                if write_record(&w, &inp.data[0] + inp.offs[r], inp.lens[r]):
                    if strict:
                        raise ValueError(f"truncated or corrupt {what} record")
                    skipped += 1
                else:
                    written += 1
                r = inp.nxt[r]
            if written == 0:
                w.len = scope_mark        # every record of the scope was corrupt
                continue
            pb_bytes(&w, K_SS_SCHEMA_URL, <const unsigned char *>PyBytes_AS_STRING(schema),
                     PyBytes_GET_SIZE(schema), False)
            pb_close(&w, scope_start, HINT_GROUP)
        if in_res:
            _close_resource(&w, res_start, res_mark, res_schema)
        out = wb_bytes(&w)
    finally:
        wb_free(&w)
    if skipped:
        _skipped_total += skipped
        log.warning("%d corrupt %s records left out of an OTLP export", skipped, what)
    if missing[0] or missing[1]:
        _missing_defs_total += missing[0] + missing[1]
        if missing[0]:
            log.warning("%d records refer to resource/scope definitions that were never written; "
                        "exported with an empty resource/scope", missing[0])
        if missing[1]:
            log.warning("%d resource/scope definitions could not be decoded; exported as empty",
                        missing[1])
    return out


cdef int _close_resource(otp_wbuf *w, Py_ssize_t start, Py_ssize_t mark, bytes schema) except -1:
    cdef otp_cursor c
    cdef Py_ssize_t pos = start
    # no ScopeX was kept (all its records corrupt): drop the ResourceX too
    cur_init(&c, w.data, w.len)
    c.pos = start
    cur_u8(&c)                               # resource key
    n = cur_varint(&c)
    if c.pos + <Py_ssize_t>n >= w.len:
        w.len = mark
        return 0
    pb_bytes(w, K_RS_SCHEMA_URL, <const unsigned char *>PyBytes_AS_STRING(schema),
             PyBytes_GET_SIZE(schema), False)
    return pb_close(w, start, HINT_GROUP)


def encode_traces(records, *, bint strict=False):
    """Serialised ExportTraceServiceRequest for a RecordSet of span records.
    Corrupt records are left out and counted (``stats()``); ``strict=True``
    raises ValueError instead, as the reference encoder does."""
    return _encode(records, _span, SPAN_PREFIX, SPAN_RESOURCE_KEY_AT, SPAN_SCOPE_KEY_AT, strict,
                   "span")


def encode_logs(records, *, bint strict=False):
    """Serialised ExportLogsServiceRequest for a RecordSet of log records;
    corrupt records as in ``encode_traces``."""
    return _encode(records, _log, LOG_PREFIX, LOG_RESOURCE_KEY_AT, LOG_SCOPE_KEY_AT, strict, "log")
