# cython: language_level=3, cdivision=True
"""Span records: encode an SDK ReadableSpan, decode one record, and decode a
ring batch into numpy columns.

Layout (reference: ``encode_span`` in otelplug/codec/_pycodec.py): a fixed
104-byte prefix (ids, times, keys, flags, kind, status, counts) that the
batch decoder reads without parsing, then the name, trace_state, status
description, attributes, events and links.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.tuple cimport PyTuple_Check
from cpython.long cimport PyLong_AsUnsignedLongLongMask, PyLong_AsUnsignedLongLong
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t
from libc.string cimport memcpy, memcmp, memset
from libc.stdlib cimport calloc, free

from wire cimport *
from record_layout cimport *
from wbuf cimport *
from cursor cimport *
from anyvalue cimport *

import numpy as np

from otelplug.codec import model as _m
from otelplug.codec.columns import SpanColumns

# SDK classes whose internals the fast path reads directly (resolved lazily:
# the consumer side decodes without importing the SDK)
cdef object _ReadableSpan = None
cdef object _BoundedList = None
cdef object _SpanContext = None
cdef object _Event = None
cdef object _Status = None
cdef object _BoundedAttributes = None
cdef bint _sdk_checked = False


cdef _load_sdk_types():
    global _ReadableSpan, _BoundedList, _SpanContext, _Event, _Status, _BoundedAttributes
    global _sdk_checked
    _sdk_checked = True
    try:
        from opentelemetry.attributes import BoundedAttributes
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.sdk.util import BoundedList
        from opentelemetry.trace import SpanContext, Status
    except ImportError:
        return
    _ReadableSpan = ReadableSpan
    _BoundedList = BoundedList
    _SpanContext = SpanContext
    _Event = Event
    _Status = Status
    _BoundedAttributes = BoundedAttributes


cdef inline object _attr_dict(object attrs):
    """The attributes as a plain dict (BoundedAttributes keeps one inside)."""
    if attrs is None:
        return {}
    if type(attrs) is _BoundedAttributes:
        return attrs._dict
    return plain_dict(attrs)


cdef inline object _items(object seq):
    """The SDK's BoundedList copies itself under a lock to iterate; read its
    deque instead (the span has ended: nothing appends any more)."""
    if seq is None:
        return ()
    if type(seq) is _BoundedList:
        return seq._dq
    return seq


cdef inline uint64_t _dropped(object obj):
    d = getattr(obj, "dropped", 0)
    return <uint64_t>d if d else 0


cdef inline int _write_trace_state(otp_wbuf *w, object ts) except -1:
    if ts is None:
        return wb_nstr(w, "")
    d = getattr(ts, "_dict", None)
    if d is not None and not d:
        return wb_nstr(w, "")
    return wb_nstr(w, ts.to_header() if ts else "")


cdef inline int _wb_trace_id(otp_wbuf *w, object v) except -1:
    """128-bit id as 16 big-endian bytes, via two 64-bit halves (no
    Python-level to_bytes call on the hot path)."""
    cdef unsigned char *p
    cdef uint64_t hi, lo
    cdef int i
    if v is None or not v:
        hi = lo = 0
    else:
        if v < 0:
            raise OverflowError("negative trace id")
        lo = PyLong_AsUnsignedLongLongMask(v)
        hi = PyLong_AsUnsignedLongLong(v >> 64)   # OverflowError beyond 128 bits
    p = wb_reserve(w, 16)
    for i in range(8):
        p[7 - i] = <unsigned char>(hi >> (8 * i))
        p[15 - i] = <unsigned char>(lo >> (8 * i))
    return 0


cdef inline int _write_context_ids(otp_wbuf *w, object ctx) except -1:
    if type(ctx) is _SpanContext:   # a tuple: (trace_id, span_id, is_remote, flags, state, ...)
        _wb_trace_id(w, (<tuple>ctx)[0])
        return wb_id(w, (<tuple>ctx)[1], 8)
    _wb_trace_id(w, ctx.trace_id)
    return wb_id(w, ctx.span_id, 8)


def encode_span(span, uint64_t resource_key, uint64_t scope_key):
    """One SPAN record (bytes) from an SDK ReadableSpan."""
    return _encode_span(span, resource_key, scope_key)


cdef object _encode_span(object span, uint64_t resource_key, uint64_t scope_key):
    cdef otp_wbuf w
    cdef unsigned char *pre
    cdef uint32_t flags
    cdef Py_ssize_t name_len
    if not _sdk_checked:
        _load_sdk_types()
    cdef uint64_t d_attrs, d_events, d_links
    if type(span) is _ReadableSpan:
        # exactly the SDK's class (what Span.end hands to processors): its
        # fields, without building property results (MappingProxy, tuples)
        name = span._name
        ctx = span._context
        parent = span._parent
        kind = span._kind
        status = span._status
        start = span._start_time
        end = span._end_time
        attrs = span._attributes
        events = span._events
        links = span._links
        d_attrs = _dropped(attrs)
        d_events = _dropped(events)
        d_links = _dropped(links)
    else:
        name = span.name
        ctx = span.context
        parent = span.parent
        kind = span.kind
        status = span.status
        start = span.start_time
        end = span.end_time
        attrs = span.attributes
        events = span.events
        links = span.links
        d_attrs = span.dropped_attributes
        d_events = span.dropped_events
        d_links = span.dropped_links
    events = _items(events)
    links = _items(links)
    attrs = _attr_dict(attrs)

    if type(ctx) is _SpanContext:
        ctx_remote = (<tuple>ctx)[2]
        ctx_flags = (<tuple>ctx)[3]
        ctx_state = (<tuple>ctx)[4]
    else:
        ctx_remote = ctx.is_remote
        ctx_flags = ctx.trace_flags
        ctx_state = ctx.trace_state
    flags = (<uint32_t>PyLong_AsUnsignedLongLongMask(ctx_flags)) & FLAG_TRACE_FLAGS_MASK
    if ctx_remote:
        flags |= FLAG_SELF_REMOTE
    if parent is not None:
        flags |= FLAG_HAS_PARENT | FLAG_HAS_IS_REMOTE
        if (parent[2] if type(parent) is _SpanContext else parent.is_remote):
            flags |= FLAG_IS_REMOTE
    if type(status) is _Status:
        status_code = status._status_code
        status_description = status._description
    else:
        status_code = status.status_code
        status_description = status.description

    wb_init(&w)
    try:
        pre = wb_reserve(&w, SPAN_PREFIX)
        memset(pre, 0, SPAN_PREFIX)
        w.len = 0
        _write_context_ids(&w, ctx)
        if parent is not None:
            wb_id(&w, parent[1] if type(parent) is _SpanContext else parent.span_id, 8)
        else:
            wb_u64(&w, 0)
        wb_u64(&w, <uint64_t>(start or 0))
        wb_u64(&w, <uint64_t>(end or 0))
        wb_u64(&w, resource_key)
        wb_u64(&w, scope_key)
        wb_u32(&w, flags)
        wb_u8(&w, <uint8_t>(<int>kind._value_ + 1))
        wb_u8(&w, <uint8_t>(<int>status_code._value_))
        wb_u8(&w, FORMAT_VERSION)
        wb_u8(&w, 0)
        w.len = SPAN_PREFIX
        # name bytes follow the prefix; its length goes back into the prefix
        wb_str_raw_len(&w, name, &name_len)
        pre = w.data
        put_le32(pre + SPAN_NAME_LEN_AT, <uint32_t>name_len)
        put_le32(pre + SPAN_DROPPED_ATTRIBUTES_AT, <uint32_t>d_attrs)
        put_le32(pre + SPAN_DROPPED_EVENTS_AT, <uint32_t>d_events)
        put_le32(pre + SPAN_DROPPED_LINKS_AT, <uint32_t>d_links)
        put_le32(pre + SPAN_ATTR_COUNT_AT, <uint32_t>len(attrs))
        put_le32(pre + SPAN_EVENT_COUNT_AT, <uint32_t>len(events))
        put_le32(pre + SPAN_LINK_COUNT_AT, <uint32_t>len(links))
        _write_trace_state(&w, ctx_state)
        wb_nstr(&w, status_description)
        wb_kvlist(&w, attrs, 0)
        for ev in events:
            if type(ev) is _Event:
                wb_u64(&w, <uint64_t>ev._timestamp)
                wb_str(&w, ev._name)
                ea = ev._attributes
            else:
                wb_u64(&w, <uint64_t>ev.timestamp)
                wb_str(&w, ev.name)
                ea = ev.attributes
            wb_kvlist(&w, _attr_dict(ea), 0)
            wb_varint(&w, _dropped(ea))
        for link in links:
            lc = link.context
            _write_context_ids(&w, lc)
            wb_u32(&w, ((<uint32_t>int(lc.trace_flags)) & FLAG_TRACE_FLAGS_MASK) | FLAG_HAS_IS_REMOTE
                   | (FLAG_IS_REMOTE if lc.is_remote else 0))
            _write_trace_state(&w, lc.trace_state)
            la = link.attributes
            wb_kvlist(&w, la, 0)
            wb_varint(&w, _dropped(la))
        return wb_bytes(&w)
    finally:
        wb_free(&w)


cdef inline int wb_str_raw_len(otp_wbuf *w, object s, Py_ssize_t *n_out) except -1:
    """UTF-8 of ``s`` without a length prefix (the prefix holds it)."""
    cdef Py_ssize_t n
    cdef const char *p = PyUnicode_AsUTF8AndSize(s, &n)
    if p == NULL:
        PyErr_Clear()
        b = (<str>s).encode("utf-8", "surrogatepass")
        n = PyBytes_GET_SIZE(b)
        wb_raw(w, PyBytes_AS_STRING(b), n)
    else:
        wb_raw(w, p, n)
    n_out[0] = n
    return 0


# -- the ShmSpanProcessor hot path ----------------------------------------------
cdef class SpanWriter:
    """on_end's work in one C call: sampled check, resource/scope keys (the
    last ones seen are cached here; ``definitions`` handles the rest and
    writes them into the ring), encode, ring write.

    ``write_span`` returns 1 (written), 0 (dropped by the ring: full or
    oversize; ``last_size`` says how big the record was) or -1 (not
    sampled); encoding errors raise.  ``reset()`` after fork: the child's
    ring needs its own definitions (otelplug.producer._shared calls it).
    """
    cdef object _producer
    cdef object _write
    cdef object _defs
    cdef object _resource
    cdef object _scope
    cdef uint64_t _rkey
    cdef uint64_t _skey
    cdef object _generation
    cdef readonly Py_ssize_t last_size
    cdef object __weakref__      # the at-fork reset list holds writers weakly
    # on_end's counters (ShmSpanProcessor.stats reads them)
    cdef public bint shutdown
    cdef public uint64_t written, dropped, too_large, encode_errors, after_shutdown
    cdef Py_ssize_t _max_record
    cdef object _on_error

    def __init__(self, producer, definitions, Py_ssize_t max_record=0, on_error=None):
        self._producer = producer
        self._write = producer.write
        self._defs = definitions
        self._max_record = max_record
        self._on_error = on_error
        self.reset()

    def on_end(self, span):
        """SpanProcessor.on_end in C: ShmSpanProcessor installs this bound
        method as its on_end (the SDK then calls it with no Python frame in
        between).  Never raises: errors are counted and reported once
        through ``on_error(span, exc)``."""
        cdef int r
        if self.shutdown:
            self.after_shutdown += 1
            return
        try:
            r = self._write_span(span)
        except Exception as exc:
            self.encode_errors += 1
            if self._on_error is not None:
                try:
                    self._on_error(span, exc)
                except Exception:
                    pass
            return
        if r > 0:
            self.written += 1
        elif r == 0:
            self.dropped += 1
            if self.last_size > self._max_record:
                self.too_large += 1

    def reset(self):
        self._resource = None
        self._scope = None
        self._generation = None

    def write_span(self, span):
        return self._write_span(span)

    cdef int _write_span(self, object span) except -2:
        if not _sdk_checked:
            _load_sdk_types()
        if type(span) is _ReadableSpan:
            ctx = span._context
            resource = span._resource
            scope = span._instrumentation_scope
        else:
            ctx = span.context
            resource = span.resource
            scope = span.instrumentation_scope
        flags = (<tuple>ctx)[3] if type(ctx) is _SpanContext else ctx.trace_flags
        if not (PyLong_AsUnsignedLongLongMask(flags) & 1):
            return -1     # not sampled: the SDK's processors do not export it either
        if resource is not self._resource or scope is not self._scope:
            self._rkey = self._defs.resource_key(resource)
            self._skey = self._defs.scope_key(scope)
            self._resource = resource
            self._scope = scope
            self._generation = self._producer.generation
        rec = _encode_span(span, self._rkey, self._skey)
        self.last_size = PyBytes_GET_SIZE(rec)
        ok = self._write(REC_SPAN, rec)
        if self._producer.generation != self._generation:
            # a new ring appeared under us (a fork Python did not see):
            # define resource and scope in it too
            self._rkey = self._defs.resource_key(resource)
            self._skey = self._defs.scope_key(scope)
            self._generation = self._producer.generation
        return 1 if ok else 0


# -- decoding one record --------------------------------------------------------
def decode_span(payload):
    """One SPAN record to ``otelplug.codec.model.SpanData``; ValueError if the
    record is truncated or corrupt."""
    cdef const unsigned char[::1] view = payload
    cdef otp_cursor c
    cdef const unsigned char *pre
    cdef uint32_t flags, name_len, n_events, n_links, i
    cdef uint64_t ts
    cdef const unsigned char *p
    cdef otp_cursor ids
    if view.shape[0] < SPAN_PREFIX:
        raise ValueError("truncated span record")
    cur_init(&c, &view[0], view.shape[0])
    pre = cur_take(&c, SPAN_PREFIX)
    flags = le32(pre + SPAN_FLAGS_AT)
    name_len = le32(pre + SPAN_NAME_LEN_AT)
    n_events = le32(pre + SPAN_EVENT_COUNT_AT)
    n_links = le32(pre + SPAN_LINK_COUNT_AT)
    p = cur_take(&c, name_len)
    if p == NULL:
        raise ValueError("truncated span record")
    name = PyUnicode_DecodeUTF8(<const char *>p, name_len, "surrogatepass")
    trace_state = cur_nstr(&c) or ""
    description = cur_nstr(&c)
    attrs = cur_kvlist(&c, 0)
    if n_events > <uint32_t>cur_left(&c) or n_links > <uint32_t>cur_left(&c):
        raise ValueError("corrupt span record: counts exceed the record")
    events = []
    for i in range(n_events):
        ts = cur_u64(&c)
        ename = cur_str(&c)
        eattrs = cur_kvlist(&c, 0)
        events.append(_m.SpanEvent(ename, ts, eattrs, cur_varint(&c)))
        if c.err:
            break
    links = []
    for i in range(n_links):
        ltid = cur_id(&c, 16)
        lsid = cur_id(&c, 8)
        lflags = cur_u32(&c)
        lts = cur_nstr(&c) or ""
        lattrs = cur_kvlist(&c, 0)
        links.append(_m.SpanLink(ltid, lsid, lflags & FLAG_TRACE_FLAGS_MASK, lts,
                                 bool(lflags & FLAG_IS_REMOTE), lattrs, cur_varint(&c)))
        if c.err:
            break
    if c.err:
        raise ValueError("truncated or corrupt span record")
    has_parent = bool(flags & FLAG_HAS_PARENT)
    cur_init(&ids, pre, SPAN_PREFIX)
    trace_id = cur_id(&ids, 16)
    span_id = cur_id(&ids, 8)
    parent_id = cur_id(&ids, 8)
    return _m.SpanData(
        trace_id=trace_id, span_id=span_id, name=name,
        trace_flags=flags & FLAG_TRACE_FLAGS_MASK, trace_state=trace_state,
        is_remote=bool(flags & FLAG_SELF_REMOTE),
        parent_span_id=parent_id if has_parent else None,
        parent_is_remote=bool(flags & FLAG_IS_REMOTE) if has_parent else False,
        kind=pre[SPAN_KIND_AT], start_time_unix_nano=le64(pre + SPAN_START_AT),
        end_time_unix_nano=le64(pre + SPAN_END_AT),
        attributes=attrs, events=events, links=links, status_code=pre[SPAN_STATUS_AT],
        status_description=description, dropped_attributes=le32(pre + SPAN_DROPPED_ATTRIBUTES_AT),
        dropped_events=le32(pre + SPAN_DROPPED_EVENTS_AT),
        dropped_links=le32(pre + SPAN_DROPPED_LINKS_AT),
        resource_key=le64(pre + SPAN_RESOURCE_KEY_AT), scope_key=le64(pre + SPAN_SCOPE_KEY_AT))


# -- batch decoding into columns ------------------------------------------------
cdef inline uint64_t _be64(const unsigned char *p) noexcept nogil:
    cdef uint64_t x = 0
    cdef int i
    for i in range(8):
        x = (x << 8) | p[i]
    return x


cdef inline uint64_t _fnv1a(const unsigned char *p, uint32_t n) noexcept nogil:
    cdef uint64_t h = 1469598103934665603ULL
    cdef uint32_t i
    for i in range(n):
        h = (h ^ p[i]) * 1099511628211ULL
    return h


ctypedef struct _name_slot:
    uint64_t hash
    uint64_t off      # where the name's bytes are in the batch data
    uint32_t len
    int32_t id        # -1: empty slot


def decode_span_columns(batch, int rtype=REC_SPAN):
    """Decode every span record of a ring ``RecordBatch`` into numpy columns
    (``otelplug.codec.columns.SpanColumns``).  Only the fixed prefix and the
    name are read; records that are too short are counted in ``invalid``
    and left out.  Names are interned: ``name_id`` indexes ``names``."""
    cdef const unsigned char[::1] data = batch.data
    cdef const uint64_t[::1] offsets = batch.offsets
    cdef const uint32_t[::1] lengths = batch.lengths
    cdef const uint8_t[::1] types = batch.types
    cdef Py_ssize_t total = offsets.shape[0], i, n = 0, k
    cdef Py_ssize_t invalid = 0
    for i in range(total):
        if types[i] == rtype:
            n += 1
    row_a = np.empty(n, np.int64)
    trace_a = np.empty((n, 16), np.uint8)
    span_a = np.empty(n, np.uint64)
    parent_a = np.empty(n, np.uint64)
    start_a = np.empty(n, np.uint64)
    end_a = np.empty(n, np.uint64)
    rkey_a = np.empty(n, np.uint64)
    skey_a = np.empty(n, np.uint64)
    flags_a = np.empty(n, np.uint32)
    kind_a = np.empty(n, np.uint8)
    status_a = np.empty(n, np.uint8)
    name_a = np.empty(n, np.int32)
    nattr_a = np.empty(n, np.uint32)
    nev_a = np.empty(n, np.uint32)
    nlink_a = np.empty(n, np.uint32)
    cdef int64_t[::1] row = row_a
    cdef uint8_t[:, ::1] trace = trace_a
    cdef uint64_t[::1] span = span_a, parent = parent_a, start = start_a, end = end_a
    cdef uint64_t[::1] rkey = rkey_a, skey = skey_a
    cdef uint32_t[::1] flg = flags_a, nattr = nattr_a, nev = nev_a, nlink = nlink_a
    cdef uint8_t[::1] kind = kind_a, status = status_a
    cdef int32_t[::1] name_id = name_a
    cdef const unsigned char *p
    cdef uint64_t off, h
    cdef uint32_t length, name_len
    cdef Py_ssize_t cap = 16, mask, slot
    cdef int32_t next_id = 0
    while cap < 2 * n:
        cap *= 2
    mask = cap - 1
    cdef _name_slot *table = <_name_slot *>calloc(cap, sizeof(_name_slot))
    if table == NULL:
        raise MemoryError()
    name_offs = []
    try:
        for slot in range(cap):
            table[slot].id = -1
        k = 0
        with nogil:
            for i in range(total):
                if types[i] != rtype:
                    continue
                off = offsets[i]
                length = lengths[i]
                if length < SPAN_PREFIX or off + length > <uint64_t>data.shape[0]:
                    invalid += 1
                    continue
                p = &data[off]
                name_len = le32(p + SPAN_NAME_LEN_AT)
                if name_len > length - SPAN_PREFIX:
                    invalid += 1
                    continue
                row[k] = i
                memcpy(&trace[k, 0], p, 16)
                span[k] = _be64(p + SPAN_SPAN_ID_AT)
                parent[k] = _be64(p + SPAN_PARENT_SPAN_ID_AT)
                start[k] = le64(p + SPAN_START_AT)
                end[k] = le64(p + SPAN_END_AT)
                rkey[k] = le64(p + SPAN_RESOURCE_KEY_AT)
                skey[k] = le64(p + SPAN_SCOPE_KEY_AT)
                flg[k] = le32(p + SPAN_FLAGS_AT)
                kind[k] = p[SPAN_KIND_AT]
                status[k] = p[SPAN_STATUS_AT]
                nattr[k] = le32(p + SPAN_ATTR_COUNT_AT)
                nev[k] = le32(p + SPAN_EVENT_COUNT_AT)
                nlink[k] = le32(p + SPAN_LINK_COUNT_AT)
                # intern the name: open addressing on an FNV-1a hash,
                # comparing bytes with the first record that had it
                h = _fnv1a(p + SPAN_PREFIX, name_len)
                slot = <Py_ssize_t>(h & <uint64_t>mask)
                while True:
                    if table[slot].id < 0:
                        table[slot].hash = h
                        table[slot].off = off + SPAN_PREFIX
                        table[slot].len = name_len
                        table[slot].id = next_id
                        next_id += 1
                        break
                    if (table[slot].hash == h and table[slot].len == name_len
                            and memcmp(&data[table[slot].off], p + SPAN_PREFIX, name_len) == 0):
                        break
                    slot = (slot + 1) & mask
                name_id[k] = table[slot].id
                k += 1
        names = [None] * next_id
        for slot in range(cap):
            if table[slot].id >= 0:
                p = &data[table[slot].off]
                names[table[slot].id] = PyUnicode_DecodeUTF8(
                    <const char *>p, table[slot].len, "surrogatepass")
    finally:
        free(table)
    return SpanColumns(
        batch=batch, row=row_a[:k], trace_id=trace_a[:k], span_id=span_a[:k],
        parent_span_id=parent_a[:k], start_time_unix_nano=start_a[:k],
        end_time_unix_nano=end_a[:k], resource_key=rkey_a[:k], scope_key=skey_a[:k],
        flags=flags_a[:k], kind=kind_a[:k], status_code=status_a[:k], name_id=name_a[:k],
        names=names, attr_count=nattr_a[:k], event_count=nev_a[:k], link_count=nlink_a[:k],
        invalid=invalid)
