# cython: language_level=3
"""Metric records: one record per metric (or per slice of its points, when a
metric has more points than fit one record).  Not a hot path (one export per
collection interval), but the same wire rules as spans and logs.

Layout (reference: ``encode_metric`` in otelplug/codec/_pycodec.py): a fixed
24-byte prefix (keys, data kind, temporality, monotonic, point count), then
name, description, unit, the resource and scope schema urls, and the points.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t

from wire cimport *
from record_layout cimport *
from wbuf cimport *
from cursor cimport *
from anyvalue cimport *

from otelplug.codec import model as _m

_KINDS = {"Gauge": M_GAUGE, "Sum": M_SUM, "Histogram": M_HISTOGRAM,
          "ExponentialHistogram": M_EXP_HISTOGRAM}


cdef int _write_exemplars(otp_wbuf *w, object exemplars) except -1:
    cdef uint8_t has
    wb_varint(w, <uint64_t>len(exemplars))
    for x in exemplars:
        wb_kvlist(w, x.filtered_attributes, 0)
        wb_number(w, x.value)
        wb_u64(w, <uint64_t>x.time_unix_nano)
        sid = x.span_id
        tid = x.trace_id
        has = (X_HAS_SPAN_ID if sid is not None else 0) | (X_HAS_TRACE_ID if tid is not None else 0)
        wb_u8(w, has)
        if sid is not None:
            wb_id(w, sid, 8)
        if tid is not None:
            wb_id(w, tid, 16)
    return 0


cdef int _write_u64_list(otp_wbuf *w, object xs) except -1:
    wb_varint(w, <uint64_t>len(xs))
    for x in xs:
        wb_u64(w, <uint64_t>x)
    return 0


def encode_metric(metric, uint64_t resource_key, uint64_t scope_key, resource_schema_url=None,
                  scope_schema_url=None, Py_ssize_t start=0, stop=None):
    """One METRIC record: ``metric``'s data points ``[start:stop]``."""
    cdef otp_wbuf w
    cdef int kind
    cdef uint8_t temporality = 0, monotonic = 0
    data = metric.data
    kind = _KINDS.get(type(data).__name__, 0)
    if kind == 0:
        raise TypeError(f"unsupported metric data {type(data).__name__}")
    if kind != M_GAUGE:
        temporality = <uint8_t>int(data.aggregation_temporality)
    if kind == M_SUM:
        monotonic = 1 if data.is_monotonic else 0
    points = list(data.data_points)[start:stop]
    wb_init(&w)
    try:
        wb_u64(&w, resource_key)
        wb_u64(&w, scope_key)
        wb_u8(&w, <uint8_t>kind)
        wb_u8(&w, temporality)
        wb_u8(&w, monotonic)
        wb_u8(&w, FORMAT_VERSION)
        wb_u32(&w, <uint32_t>len(points))
        wb_str(&w, metric.name)
        wb_nstr(&w, metric.description)
        wb_nstr(&w, metric.unit)
        wb_nstr(&w, resource_schema_url)
        wb_nstr(&w, scope_schema_url)
        for p in points:
            pstart = p.start_time_unix_nano
            wb_u8(&w, P_HAS_START if pstart is not None else 0)
            wb_kvlist(&w, p.attributes, 0)
            wb_u64(&w, <uint64_t>(pstart or 0))
            wb_u64(&w, <uint64_t>p.time_unix_nano)
            if kind == M_GAUGE or kind == M_SUM:
                wb_number(&w, p.value)
            elif kind == M_HISTOGRAM:
                wb_u64(&w, <uint64_t>p.count)
                wb_number(&w, p.sum)
                _write_u64_list(&w, p.bucket_counts)
                bounds = p.explicit_bounds
                wb_varint(&w, <uint64_t>len(bounds))
                for b in bounds:
                    wb_f64(&w, <double>b)
                wb_number(&w, p.min)
                wb_number(&w, p.max)
            else:
                wb_u64(&w, <uint64_t>p.count)
                wb_number(&w, p.sum)
                wb_svarint(&w, <int64_t>p.scale)
                wb_u64(&w, <uint64_t>p.zero_count)
                wb_svarint(&w, <int64_t>p.positive.offset)
                _write_u64_list(&w, p.positive.bucket_counts)
                wb_svarint(&w, <int64_t>p.negative.offset)
                _write_u64_list(&w, p.negative.bucket_counts)
                wb_u32(&w, <uint32_t>p.flags)
                wb_number(&w, p.min)
                wb_number(&w, p.max)
            _write_exemplars(&w, p.exemplars)
        return wb_bytes(&w)
    finally:
        wb_free(&w)


cdef object _read_exemplars(otp_cursor *c):
    cdef uint64_t i, n = cur_count(c)
    cdef uint8_t has
    out = []
    for i in range(n):
        attrs = cur_kvlist(c, 0)
        value = cur_number(c)
        ts = cur_u64(c)
        has = cur_u8(c)
        sid = cur_id(c, 8) if has & X_HAS_SPAN_ID else None
        tid = cur_id(c, 16) if has & X_HAS_TRACE_ID else None
        out.append(_m.Exemplar(attrs, value, ts, sid, tid))
        if c.err:
            break
    return out


cdef object _read_u64_list(otp_cursor *c):
    cdef uint64_t i, n = cur_varint(c)
    if n > <uint64_t>cur_left(c) // 8:
        c.err = 1
        return ()
    return tuple([cur_u64(c) for i in range(n)])


def decode_metric(payload):
    """One METRIC record to ``otelplug.codec.model.MetricData``."""
    cdef const unsigned char[::1] view = payload
    cdef otp_cursor c
    cdef const unsigned char *pre
    cdef uint8_t kind, pflags
    cdef uint32_t i, n_points
    cdef uint64_t nb, j
    if view.shape[0] < METRIC_PREFIX:
        raise ValueError("truncated metric record")
    cur_init(&c, &view[0], view.shape[0])
    pre = cur_take(&c, METRIC_PREFIX)
    kind = pre[METRIC_KIND_AT]
    if kind < M_GAUGE or kind > M_EXP_HISTOGRAM:
        raise ValueError(f"unknown metric kind {kind}")
    n_points = le32(pre + METRIC_POINT_COUNT_AT)
    if n_points > <uint32_t>cur_left(&c):
        raise ValueError("corrupt metric record: point count exceeds the record")
    name = cur_str(&c)
    description = cur_nstr(&c)
    unit = cur_nstr(&c)
    rschema = cur_nstr(&c)
    sschema = cur_nstr(&c)
    points = []
    for i in range(n_points):
        pflags = cur_u8(&c)
        attrs = cur_kvlist(&c, 0)
        start = cur_u64(&c)
        if not pflags & P_HAS_START:
            start = None
        ts = cur_u64(&c)
        if kind == M_GAUGE or kind == M_SUM:
            value = cur_number(&c)
            points.append(_m.NumberPoint(attrs, start, ts, value, _read_exemplars(&c)))
        elif kind == M_HISTOGRAM:
            count = cur_u64(&c)
            total = cur_number(&c)
            buckets = _read_u64_list(&c)
            nb = cur_varint(&c)
            if nb > <uint64_t>cur_left(&c) // 8:
                c.err = 1
                break
            bounds = tuple([cur_f64(&c) for j in range(nb)])
            lo = cur_number(&c)
            hi = cur_number(&c)
            points.append(_m.HistogramPoint(attrs, start, ts, count, total, buckets, bounds,
                                            lo, hi, _read_exemplars(&c)))
        else:
            count = cur_u64(&c)
            total = cur_number(&c)
            scale = cur_svarint(&c)
            zero = cur_u64(&c)
            poff = cur_svarint(&c)
            pos = _read_u64_list(&c)
            noff = cur_svarint(&c)
            neg = _read_u64_list(&c)
            pf = cur_u32(&c)
            lo = cur_number(&c)
            hi = cur_number(&c)
            points.append(_m.ExpHistogramPoint(attrs, start, ts, count, total, scale, zero,
                                               poff, pos, noff, neg, pf, lo, hi,
                                               _read_exemplars(&c)))
        if c.err:
            break
    if c.err:
        raise ValueError("truncated or corrupt metric record")
    return _m.MetricData(name, description, unit, kind, pre[METRIC_TEMPORALITY_AT],
                         bool(pre[METRIC_MONOTONIC_AT]), points, rschema, sschema,
                         le64(pre + METRIC_RESOURCE_KEY_AT), le64(pre + METRIC_SCOPE_KEY_AT))
