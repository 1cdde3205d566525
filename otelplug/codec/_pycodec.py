"""Pure-Python reference codec: the executable spec of the wire format.

The Cython codecs (``cython_ext/*_codec.pyx``) must produce byte-identical
records and decode to equal models; tests run every round trip against both
and compare their bytes (see FORMAT.md for the layout).  This module favours
clarity over speed: it is used in tests, as a fallback when the extension is
not built, and as the definition of what the fast code must do.
"""
from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence

from . import model as m
from . import types as t

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_SPAN_PREFIX = struct.Struct("<16s8s8sQQQQIBBBBIIIIIIII")
_LOG_PREFIX = struct.Struct("<16s8sQQQQIBBHII")
_METRIC_PREFIX = struct.Struct("<QQBBBBI")
assert _SPAN_PREFIX.size == t.SPAN_PREFIX
assert _LOG_PREFIX.size == t.LOG_PREFIX
assert _METRIC_PREFIX.size == t.METRIC_PREFIX

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_U64_MAX = (1 << 64) - 1


# =============================================================================
# encoding
# =============================================================================
class Writer:
    """Append-only byte builder with the wire format's primitives."""

    __slots__ = ("buf",)

    def __init__(self):
        self.buf = bytearray()

    def u8(self, v: int):
        self.buf.append(v)

    def u32(self, v: int):
        self.buf += _U32.pack(v)

    def u64(self, v: int):
        self.buf += _U64.pack(v)

    def i64(self, v: int):
        self.buf += _I64.pack(v)

    def f64(self, v: float):
        self.buf += _F64.pack(v)

    def varint(self, v: int):
        if v < 0 or v > _U64_MAX:
            raise OverflowError("varint out of range")
        while v >= 0x80:
            self.buf.append((v & 0x7F) | 0x80)
            v >>= 7
        self.buf.append(v)

    def svarint(self, v: int):
        if v < _I64_MIN or v > _I64_MAX:
            raise OverflowError("int value outside int64")
        self.varint(((v << 1) ^ (v >> 63)) & _U64_MAX)

    def raw(self, b: bytes):
        self.buf += b

    def str(self, s: str):
        b = s.encode("utf-8", "surrogatepass")
        self.varint(len(b))
        self.buf += b

    def nstr(self, s: str | None):
        """Nullable string: varint (len + 1), 0 for None."""
        if s is None:
            self.buf.append(0)
            return
        b = s.encode("utf-8", "surrogatepass")
        self.varint(len(b) + 1)
        self.buf += b

    def bytes_(self, b):
        b = bytes(b)
        self.varint(len(b))
        self.buf += b


def _scalar_tag(v) -> int:
    """The homogeneous-array tag ``v`` would allow, or 0."""
    if isinstance(v, bool):
        return t.T_BOOL_ARRAY
    if isinstance(v, int):
        return t.T_INT_ARRAY
    if isinstance(v, float):
        return t.T_DOUBLE_ARRAY
    if isinstance(v, str):
        return t.T_STR_ARRAY
    return 0


MAX_DEPTH = 64


def write_value(w: Writer, v, depth: int = 0) -> None:
    """One tagged AnyValue (attribute values are a subset).  ``depth``
    counts enclosing maps and arrays (at most MAX_DEPTH)."""
    if depth > MAX_DEPTH:
        raise ValueError("AnyValue nested too deeply")
    if v is None:
        w.u8(t.T_EMPTY)
    elif isinstance(v, bool):
        w.u8(t.T_TRUE if v else t.T_FALSE)
    elif isinstance(v, int):
        w.u8(t.T_INT)
        w.svarint(v)
    elif isinstance(v, float):
        w.u8(t.T_DOUBLE)
        w.f64(v)
    elif isinstance(v, str):
        w.u8(t.T_STR)
        w.str(v)
    elif isinstance(v, (bytes, bytearray)):
        w.u8(t.T_BYTES)
        w.bytes_(v)
    elif isinstance(v, Mapping):
        w.u8(t.T_KVLIST)
        write_kvlist(w, v, depth + 1)
    elif isinstance(v, Sequence):
        _write_sequence(w, v, depth)
    else:
        raise TypeError(f"unsupported attribute/AnyValue type {type(v).__name__}")


def _write_sequence(w: Writer, seq, depth: int) -> None:
    if not isinstance(seq, (tuple, list)):
        seq = tuple(seq)
    n = len(seq)
    tag = _scalar_tag(seq[0]) if n else 0
    if tag:
        for x in seq:
            if _scalar_tag(x) != tag:
                tag = 0
                break
    if tag == 0:
        w.u8(t.T_ARRAY)
        w.varint(n)
        for x in seq:
            write_value(w, x, depth + 1)
        return
    w.u8(tag)
    w.varint(n)
    if tag == t.T_STR_ARRAY:
        for x in seq:
            w.str(x)
    elif tag == t.T_BOOL_ARRAY:
        for x in seq:
            w.u8(1 if x else 0)
    elif tag == t.T_INT_ARRAY:
        for x in seq:
            w.svarint(x)
    else:
        for x in seq:
            w.f64(x)


def write_kvlist(w: Writer, attrs, depth: int = 0) -> None:
    if not attrs:
        w.u8(0)
        return
    items = list(attrs.items())
    w.varint(len(items))
    for k, v in items:
        if not isinstance(k, str):
            raise TypeError("attribute keys must be str")
        w.str(k)
        write_value(w, v, depth)


def write_number(w: Writer, v) -> None:
    if isinstance(v, int) and not isinstance(v, bool):
        w.u8(t.N_INT)
        if v < _I64_MIN or v > _I64_MAX:
            raise OverflowError("int value outside int64")
        w.i64(v)
    else:
        w.u8(t.N_DOUBLE)
        w.f64(float(v))


def _id_bytes(v: int, n: int) -> bytes:
    return int(v or 0).to_bytes(n, "big")


def _ctx_flags(trace_flags, is_remote) -> int:
    return (int(trace_flags or 0) & t.FLAG_TRACE_FLAGS_MASK) | t.FLAG_HAS_IS_REMOTE | (
        t.FLAG_IS_REMOTE if is_remote else 0)


def _trace_state_header(ts) -> str:
    return ts.to_header() if ts else ""


def _dropped(obj) -> int:
    return int(getattr(obj, "dropped", 0) or 0)


# -- definitions ---------------------------------------------------------------
def definition_key(payload: bytes) -> int:
    """64-bit content key of a definition payload (never 0)."""
    k = int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "little")
    return k or 1


def encode_resource(resource, pid: int | None = None) -> bytes:
    """Resource definition payload.  ``pid`` (if given) replaces or adds
    ``process.pid`` so that each process's ring carries its own pid."""
    attrs = resource.attributes
    if pid is not None:
        attrs = dict(attrs)
        attrs["process.pid"] = pid
    w = Writer()
    w.u8(t.RESOURCE)
    w.u8(t.FORMAT_VERSION)
    w.nstr(resource.schema_url if resource.schema_url else None)
    write_kvlist(w, attrs)
    w.varint(_dropped(resource.attributes))
    return bytes(w.buf)


def encode_scope(scope) -> bytes:
    w = Writer()
    w.u8(t.SCOPE)
    w.u8(t.FORMAT_VERSION)
    w.str(scope.name or "")
    w.nstr(scope.version)
    w.nstr(scope.schema_url)
    write_kvlist(w, scope.attributes)
    w.varint(_dropped(scope.attributes))
    return bytes(w.buf)


# -- spans ----------------------------------------------------------------------
def encode_span(span, resource_key: int, scope_key: int) -> bytes:
    """One SPAN record from an SDK ReadableSpan."""
    ctx = span.context
    parent = span.parent
    attrs = span.attributes
    events = span.events
    links = span.links
    status = span.status
    name = span.name.encode("utf-8", "surrogatepass")
    flags = int(ctx.trace_flags) & t.FLAG_TRACE_FLAGS_MASK
    if ctx.is_remote:
        flags |= t.FLAG_SELF_REMOTE
    parent_id = b"\0" * 8
    if parent is not None:
        flags |= t.FLAG_HAS_PARENT | t.FLAG_HAS_IS_REMOTE
        if parent.is_remote:
            flags |= t.FLAG_IS_REMOTE
        parent_id = _id_bytes(parent.span_id, 8)
    w = Writer()
    w.raw(_SPAN_PREFIX.pack(
        _id_bytes(ctx.trace_id, 16), _id_bytes(ctx.span_id, 8), parent_id,
        span.start_time or 0, span.end_time or 0, resource_key, scope_key, flags,
        span.kind.value + 1, status.status_code.value, t.FORMAT_VERSION, 0,
        len(name), span.dropped_attributes, span.dropped_events, span.dropped_links,
        len(attrs), len(events), len(links), 0))
    w.raw(name)
    w.nstr(_trace_state_header(ctx.trace_state))
    w.nstr(status.description)
    write_kvlist(w, attrs)
    for ev in events:
        w.u64(ev.timestamp)
        w.str(ev.name)
        write_kvlist(w, ev.attributes)
        w.varint(_dropped(ev.attributes))
    for link in links:
        lc = link.context
        w.raw(_id_bytes(lc.trace_id, 16))
        w.raw(_id_bytes(lc.span_id, 8))
        w.u32(_ctx_flags(lc.trace_flags, lc.is_remote))
        w.nstr(_trace_state_header(lc.trace_state))
        write_kvlist(w, link.attributes)
        w.varint(_dropped(link.attributes))
    return bytes(w.buf)


# -- logs -----------------------------------------------------------------------
def encode_log(record, dropped_attributes: int, resource_key: int, scope_key: int) -> bytes:
    """One LOG record from an SDK LogRecord (``ReadWriteLogRecord.log_record``)."""
    attrs = record.attributes
    flags = 0
    if record.trace_flags is not None:
        flags |= (int(record.trace_flags) & t.FLAG_TRACE_FLAGS_MASK) | t.LOG_HAS_TRACE_FLAGS
    if record.timestamp is not None:
        flags |= t.LOG_HAS_TIME
    sev = record.severity_number
    if sev is not None:
        flags |= t.LOG_HAS_SEVERITY
    w = Writer()
    w.raw(_LOG_PREFIX.pack(
        _id_bytes(record.trace_id, 16), _id_bytes(record.span_id, 8),
        record.timestamp or 0, record.observed_timestamp or 0, resource_key, scope_key,
        flags, sev.value if sev is not None else 0, t.FORMAT_VERSION, 0,
        dropped_attributes, len(attrs) if attrs else 0))
    w.nstr(record.severity_text)
    w.nstr(record.event_name)
    write_value(w, record.body)
    write_kvlist(w, attrs)
    return bytes(w.buf)


# -- metrics --------------------------------------------------------------------
def _metric_kind(data) -> tuple[int, int, bool]:
    kind = type(data).__name__
    if kind == "Gauge":
        return t.M_GAUGE, 0, False
    if kind == "Sum":
        return t.M_SUM, int(data.aggregation_temporality), bool(data.is_monotonic)
    if kind == "Histogram":
        return t.M_HISTOGRAM, int(data.aggregation_temporality), False
    if kind == "ExponentialHistogram":
        return t.M_EXP_HISTOGRAM, int(data.aggregation_temporality), False
    raise TypeError(f"unsupported metric data {kind}")


def _write_exemplars(w: Writer, exemplars) -> None:
    w.varint(len(exemplars))
    for x in exemplars:
        write_kvlist(w, x.filtered_attributes)
        write_number(w, x.value)
        w.u64(x.time_unix_nano)
        has = (t.X_HAS_SPAN_ID if x.span_id is not None else 0) | (
            t.X_HAS_TRACE_ID if x.trace_id is not None else 0)
        w.u8(has)
        if x.span_id is not None:
            w.raw(_id_bytes(x.span_id, 8))
        if x.trace_id is not None:
            w.raw(_id_bytes(x.trace_id, 16))


def _write_point_head(w: Writer, p) -> None:
    start = p.start_time_unix_nano
    w.u8(t.P_HAS_START if start is not None else 0)
    write_kvlist(w, p.attributes)
    w.u64(start or 0)
    w.u64(p.time_unix_nano)


def _write_u64_list(w: Writer, xs) -> None:
    w.varint(len(xs))
    for x in xs:
        w.u64(x)


def encode_metric(metric, resource_key: int, scope_key: int, resource_schema_url=None,
                  scope_schema_url=None, start: int = 0, stop: int | None = None) -> bytes:
    """One METRIC record: ``metric``'s data points ``[start:stop]``."""
    data = metric.data
    kind, temporality, monotonic = _metric_kind(data)
    points = list(data.data_points)[start:stop]
    w = Writer()
    w.raw(_METRIC_PREFIX.pack(resource_key, scope_key, kind, temporality, monotonic,
                              t.FORMAT_VERSION, len(points)))
    w.str(metric.name)
    w.nstr(metric.description)
    w.nstr(metric.unit)
    w.nstr(resource_schema_url)
    w.nstr(scope_schema_url)
    for p in points:
        _write_point_head(w, p)
        if kind <= t.M_SUM:
            write_number(w, p.value)
        elif kind == t.M_HISTOGRAM:
            w.u64(p.count)
            write_number(w, p.sum)
            _write_u64_list(w, p.bucket_counts)
            w.varint(len(p.explicit_bounds))
            for b in p.explicit_bounds:
                w.f64(b)
            write_number(w, p.min)
            write_number(w, p.max)
        else:
            w.u64(p.count)
            write_number(w, p.sum)
            w.svarint(p.scale)
            w.u64(p.zero_count)
            w.svarint(p.positive.offset)
            _write_u64_list(w, p.positive.bucket_counts)
            w.svarint(p.negative.offset)
            _write_u64_list(w, p.negative.bucket_counts)
            w.u32(p.flags)
            write_number(w, p.min)
            write_number(w, p.max)
        _write_exemplars(w, p.exemplars)
    return bytes(w.buf)


# =============================================================================
# decoding
# =============================================================================
class Reader:
    """Bounds-checked cursor; any overrun raises ValueError."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf, pos: int = 0):
        self.buf = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
        self.pos = pos

    def _take(self, n: int):
        p = self.pos
        if n < 0 or p + n > len(self.buf):
            raise ValueError("truncated record")
        self.pos = p + n
        return self.buf[p:p + n]

    def u8(self) -> int:
        if self.pos >= len(self.buf):
            raise ValueError("truncated record")
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def u32(self) -> int:
        return _U32.unpack(self._take(4))[0]

    def u64(self) -> int:
        return _U64.unpack(self._take(8))[0]

    def i64(self) -> int:
        return _I64.unpack(self._take(8))[0]

    def f64(self) -> float:
        return _F64.unpack(self._take(8))[0]

    def varint(self) -> int:
        v = shift = 0
        while True:
            b = self.u8()
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")
        if v > _U64_MAX:
            raise ValueError("varint too large")
        return v

    def svarint(self) -> int:
        u = self.varint()
        return (u >> 1) ^ -(u & 1)

    def count(self) -> int:
        """An element count: each element takes at least one byte."""
        n = self.varint()
        if n > len(self.buf) - self.pos:
            raise ValueError("count exceeds record")
        return n

    def str(self) -> str:
        n = self.varint()
        return bytes(self._take(n)).decode("utf-8", "surrogatepass")

    def nstr(self):
        n = self.varint()
        if n == 0:
            return None
        return bytes(self._take(n - 1)).decode("utf-8", "surrogatepass")

    def id(self, n: int) -> int:
        return int.from_bytes(self._take(n), "big")


def read_value(r: Reader, depth: int = 0):
    if depth > 64:
        raise ValueError("AnyValue nested too deeply")
    tag = r.u8()
    if tag == t.T_EMPTY:
        return None
    if tag == t.T_STR:
        return r.str()
    if tag == t.T_FALSE:
        return False
    if tag == t.T_TRUE:
        return True
    if tag == t.T_INT:
        return r.svarint()
    if tag == t.T_DOUBLE:
        return r.f64()
    if tag == t.T_BYTES:
        return bytes(r._take(r.varint()))
    if tag == t.T_ARRAY:
        return tuple(read_value(r, depth + 1) for _ in range(r.count()))
    if tag == t.T_KVLIST:
        return read_kvlist(r, depth + 1)
    if tag == t.T_STR_ARRAY:
        return tuple(r.str() for _ in range(r.count()))
    if tag == t.T_BOOL_ARRAY:
        return tuple(bool(r.u8()) for _ in range(r.count()))
    if tag == t.T_INT_ARRAY:
        return tuple(r.svarint() for _ in range(r.count()))
    if tag == t.T_DOUBLE_ARRAY:
        return tuple(r.f64() for _ in range(r.count()))
    raise ValueError(f"unknown value tag {tag}")


def read_kvlist(r: Reader, depth: int = 0) -> dict:
    out = {}
    for _ in range(r.count()):
        k = r.str()
        out[k] = read_value(r, depth)
    return out


def read_number(r: Reader):
    tag = r.u8()
    if tag == t.N_INT:
        return r.i64()
    if tag == t.N_DOUBLE:
        return r.f64()
    raise ValueError(f"unknown number tag {tag}")


def decode_definition(payload):
    """A RESOURCE or SCOPE definition payload to its model."""
    r = Reader(payload)
    kind = r.u8()
    r.u8()  # version
    if kind == t.RESOURCE:
        schema_url = r.nstr()
        attrs = read_kvlist(r)
        return m.Resource(attrs, schema_url, r.varint())
    if kind == t.SCOPE:
        name = r.str()
        version = r.nstr()
        schema_url = r.nstr()
        attrs = read_kvlist(r)
        return m.Scope(name, version, schema_url, attrs, r.varint())
    raise ValueError(f"unknown definition kind {kind}")


def decode_span(payload) -> m.SpanData:
    r = Reader(payload)
    (tid, sid, pid, start, end, rkey, skey, flags, kind, status, _ver, _r0, name_len,
     d_attrs, d_events, d_links, _n_attrs, n_events, n_links, _r1) = _SPAN_PREFIX.unpack(
        r._take(t.SPAN_PREFIX))
    name = bytes(r._take(name_len)).decode("utf-8", "surrogatepass")
    trace_state = r.nstr() or ""
    description = r.nstr()
    attrs = read_kvlist(r)
    if n_events > len(r.buf) or n_links > len(r.buf):
        raise ValueError("count exceeds record")
    events = []
    for _ in range(n_events):
        ts = r.u64()
        ename = r.str()
        eattrs = read_kvlist(r)
        events.append(m.SpanEvent(ename, ts, eattrs, r.varint()))
    links = []
    for _ in range(n_links):
        ltid = r.id(16)
        lsid = r.id(8)
        lflags = r.u32()
        lts = r.nstr() or ""
        lattrs = read_kvlist(r)
        links.append(m.SpanLink(ltid, lsid, lflags & t.FLAG_TRACE_FLAGS_MASK, lts,
                                bool(lflags & t.FLAG_IS_REMOTE), lattrs, r.varint()))
    has_parent = bool(flags & t.FLAG_HAS_PARENT)
    return m.SpanData(
        trace_id=int.from_bytes(tid, "big"), span_id=int.from_bytes(sid, "big"), name=name,
        trace_flags=flags & t.FLAG_TRACE_FLAGS_MASK, trace_state=trace_state,
        is_remote=bool(flags & t.FLAG_SELF_REMOTE),
        parent_span_id=int.from_bytes(pid, "big") if has_parent else None,
        parent_is_remote=bool(flags & t.FLAG_IS_REMOTE) if has_parent else False,
        kind=kind, start_time_unix_nano=start, end_time_unix_nano=end, attributes=attrs,
        events=events, links=links, status_code=status, status_description=description,
        dropped_attributes=d_attrs, dropped_events=d_events, dropped_links=d_links,
        resource_key=rkey, scope_key=skey)


def decode_log(payload) -> m.LogData:
    r = Reader(payload)
    (tid, sid, ts, observed, rkey, skey, flags, sev, _ver, _r0, dropped,
     _n_attrs) = _LOG_PREFIX.unpack(r._take(t.LOG_PREFIX))
    severity_text = r.nstr()
    event_name = r.nstr()
    body = read_value(r)
    attrs = read_kvlist(r)
    return m.LogData(
        time_unix_nano=ts if flags & t.LOG_HAS_TIME else None,
        observed_time_unix_nano=observed, trace_id=int.from_bytes(tid, "big"),
        span_id=int.from_bytes(sid, "big"),
        trace_flags=(flags & t.FLAG_TRACE_FLAGS_MASK) if flags & t.LOG_HAS_TRACE_FLAGS else None,
        severity_number=sev if flags & t.LOG_HAS_SEVERITY else None,
        severity_text=severity_text, event_name=event_name, body=body, attributes=attrs,
        dropped_attributes=dropped, resource_key=rkey, scope_key=skey)


def _read_exemplars(r: Reader) -> list:
    out = []
    for _ in range(r.count()):
        attrs = read_kvlist(r)
        value = read_number(r)
        ts = r.u64()
        has = r.u8()
        span_id = r.id(8) if has & t.X_HAS_SPAN_ID else None
        trace_id = r.id(16) if has & t.X_HAS_TRACE_ID else None
        out.append(m.Exemplar(attrs, value, ts, span_id, trace_id))
    return out


def _read_u64_list(r: Reader) -> tuple:
    n = r.varint()
    if n * 8 > len(r.buf) - r.pos:
        raise ValueError("count exceeds record")
    return tuple(r.u64() for _ in range(n))


def decode_metric(payload) -> m.MetricData:
    r = Reader(payload)
    rkey, skey, kind, temporality, monotonic, _ver, n_points = _METRIC_PREFIX.unpack(
        r._take(t.METRIC_PREFIX))
    if kind not in (t.M_GAUGE, t.M_SUM, t.M_HISTOGRAM, t.M_EXP_HISTOGRAM):
        raise ValueError(f"unknown metric kind {kind}")
    if n_points > len(r.buf):
        raise ValueError("count exceeds record")
    name = r.str()
    description = r.nstr()
    unit = r.nstr()
    rschema = r.nstr()
    sschema = r.nstr()
    points = []
    for _ in range(n_points):
        pflags = r.u8()
        attrs = read_kvlist(r)
        start = r.u64()
        if not pflags & t.P_HAS_START:
            start = None
        ts = r.u64()
        if kind <= t.M_SUM:
            value = read_number(r)
            points.append(m.NumberPoint(attrs, start, ts, value, _read_exemplars(r)))
        elif kind == t.M_HISTOGRAM:
            count = r.u64()
            total = read_number(r)
            buckets = _read_u64_list(r)
            nb = r.varint()
            if nb * 8 > len(r.buf) - r.pos:
                raise ValueError("count exceeds record")
            bounds = tuple(r.f64() for _ in range(nb))
            lo = read_number(r)
            hi = read_number(r)
            points.append(m.HistogramPoint(attrs, start, ts, count, total, buckets, bounds,
                                           lo, hi, _read_exemplars(r)))
        else:
            count = r.u64()
            total = read_number(r)
            scale = r.svarint()
            zero = r.u64()
            poff = r.svarint()
            pos = _read_u64_list(r)
            noff = r.svarint()
            neg = _read_u64_list(r)
            pf = r.u32()
            lo = read_number(r)
            hi = read_number(r)
            points.append(m.ExpHistogramPoint(attrs, start, ts, count, total, scale, zero,
                                              poff, pos, noff, neg, pf, lo, hi,
                                              _read_exemplars(r)))
    return m.MetricData(name, description, unit, kind, temporality, bool(monotonic), points,
                        rschema, sschema, rkey, skey)
