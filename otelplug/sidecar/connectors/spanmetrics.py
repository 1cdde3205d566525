"""spanmetrics: R.E.D. metrics from spans (traces -> metrics), after the
Collector's spanmetrics connector.

- ``<namespace>.calls``: a monotonic sum of spans, and
  ``<namespace>.duration``: an explicit-bucket histogram of span duration
  (unit ``ms`` or ``s``); namespace ``traces.span.metrics`` by default;
- dimensions: ``service.name``, ``span.name``, ``span.kind``
  (``SPAN_KIND_SERVER`` ...), ``status.code`` (``STATUS_CODE_ERROR`` ...),
  minus ``exclude_dimensions``, plus ``dimensions`` looked up in the span's
  attributes, then its resource's, else their ``default`` (or left out);
- one metrics resource per spans resource, scope ``spanmetricsconnector``;
- cumulative temporality by default, emitted every ``metrics_flush_interval``.

Spans sampled upstream count for what they represent: a span whose
tracestate carries an OpenTelemetry sampling threshold (``ot=th:<hex>``)
counts ``2^56 / (2^56 - threshold)`` (its adjusted count) in ``calls`` and
in the histogram.

Batches are aggregated with numpy over the span columns (grouping with
``np.unique``); only spans with a tracestate, and (when extra dimensions
are configured) span attributes, are read per span.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from otelplug import codec

from ..component import Factory, Kind
from ..config.decode import Duration
from ..consumer import Consumer
from ..data import RecordSet

log = logging.getLogger("otelplug.sidecar")

DEFAULT_BUCKETS = ["2ms", "4ms", "6ms", "8ms", "10ms", "50ms", "100ms", "200ms", "400ms",
                   "800ms", "1s", "1400ms", "2s", "5s", "10s", "15s"]
KIND_NAMES = {0: "SPAN_KIND_UNSPECIFIED", 1: "SPAN_KIND_INTERNAL", 2: "SPAN_KIND_SERVER",
              3: "SPAN_KIND_CLIENT", 4: "SPAN_KIND_PRODUCER", 5: "SPAN_KIND_CONSUMER"}
STATUS_NAMES = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}
DEFAULT_DIMENSIONS = ("service.name", "span.name", "span.kind", "status.code")
SCOPE_NAME = "spanmetricsconnector"
CUMULATIVE, DELTA = 2, 1
_TH_MAX = 1 << 56


@dataclass
class Dimension:
    name: str = ""
    default: str | None = None

    def validate(self):
        return [] if self.name else [(("name",), "must be set")]


@dataclass
class ExplicitBuckets:
    buckets: list[Duration] = field(default_factory=lambda: [Duration.parse(b) for b in DEFAULT_BUCKETS])

    def validate(self):
        b = list(self.buckets)
        if any(y <= x for x, y in zip(b, b[1:])):
            return [(("buckets",), "must be strictly increasing")]
        return []


@dataclass
class HistogramConfig:
    disable: bool = False
    unit: Literal["ms", "s"] = "ms"
    explicit: ExplicitBuckets = field(default_factory=ExplicitBuckets)


@dataclass
class SpanMetricsConfig:
    histogram: HistogramConfig = field(default_factory=HistogramConfig)
    dimensions: list[Dimension] = field(default_factory=list)
    exclude_dimensions: list[str] = field(default_factory=list)
    aggregation_temporality: Literal["AGGREGATION_TEMPORALITY_CUMULATIVE",
                                     "AGGREGATION_TEMPORALITY_DELTA"] = \
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    namespace: str = "traces.span.metrics"
    metrics_flush_interval: Duration = Duration(15.0)
    metrics_expiration: Duration = Duration(0.0)     # 0: never

    def validate(self):
        errs = []
        if self.metrics_flush_interval <= 0:
            errs.append((("metrics_flush_interval",), "must be positive"))
        names = [d.name for d in self.dimensions]
        for i, d in enumerate(self.dimensions):
            if d.name in DEFAULT_DIMENSIONS and d.name not in self.exclude_dimensions:
                errs.append((("dimensions", str(i), "name"),
                             f"{d.name!r} is already a default dimension"))
            elif names.count(d.name) > 1:
                errs.append((("dimensions", str(i), "name"), f"{d.name!r} is listed twice"))
        return errs


# -- sampling ------------------------------------------------------------------------
def adjusted_count(trace_state: str) -> float:
    """The adjusted count of a span from its W3C tracestate: the ``th``
    (rejection threshold, up to 14 hex digits, trailing zeros dropped) of
    the ``ot`` entry gives ``2^56 / (2^56 - th)``; 1 without one (or with
    one that does not parse)."""
    for member in trace_state.split(","):
        key, _, value = member.strip().partition("=")
        if key != "ot":
            continue
        for part in value.split(";"):
            k, _, v = part.partition(":")
            if k != "th":
                continue
            if not 1 <= len(v) <= 14:
                return 1.0
            try:
                th = int(v.ljust(14, "0"), 16)
            except ValueError:
                return 1.0
            return _TH_MAX / (_TH_MAX - th)
    return 1.0


def _span_weights(records: RecordSet, cols) -> np.ndarray:
    """Adjusted counts of every span of ``cols``: the tracestate sits right
    after the name (a nullable string: 0 none, 1 empty), so only spans
    whose first byte there is > 1 are parsed."""
    n = len(cols)
    weights = np.ones(n, dtype=np.float64)
    if n == 0:
        return weights
    buf = np.frombuffer(records.buf, dtype=np.uint8)
    off = records.offsets[cols.row].astype(np.int64)
    name_len = buf[off + 72].astype(np.int64) | (buf[off + 73].astype(np.int64) << 8) | (
        buf[off + 74].astype(np.int64) << 16) | (buf[off + 75].astype(np.int64) << 24)
    at = off + 104 + name_len
    for i in np.flatnonzero(buf[at] > 1).tolist():
        p = int(at[i])
        length, shift = 0, 0
        while True:
            b = int(buf[p])
            p += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        ts = bytes(buf[p:p + length - 1]).decode("utf-8", "replace")
        if "ot=" in ts:
            weights[i] = adjusted_count(ts)
    return weights


# -- SDK-shaped views the codec's metric encoder reads ------------------------------
class Sum:
    def __init__(self, points, temporality):
        self.data_points, self.aggregation_temporality, self.is_monotonic = points, temporality, True


class Histogram:
    def __init__(self, points, temporality):
        self.data_points, self.aggregation_temporality = points, temporality


class _Metric:
    def __init__(self, name, description, unit, data):
        self.name, self.description, self.unit, self.data = name, description, unit, data


class _NumberPoint:
    def __init__(self, attributes, start, now, value):
        self.attributes, self.start_time_unix_nano, self.time_unix_nano = attributes, start, now
        self.value, self.exemplars = value, []


class _HistPoint:
    def __init__(self, attributes, start, now, count, sum_, buckets, bounds, min_, max_):
        self.attributes, self.start_time_unix_nano, self.time_unix_nano = attributes, start, now
        self.count, self.sum, self.bucket_counts, self.explicit_bounds = count, sum_, buckets, bounds
        self.min, self.max, self.exemplars = min_, max_, []


class _Scope:
    name, version, schema_url, attributes = SCOPE_NAME, None, None, {}


class _Series:
    """Running totals of one dimension set (weighted by adjusted counts)."""
    __slots__ = ("resource_key", "attributes", "calls", "sum", "buckets", "min", "max",
                 "start", "updated")

    def __init__(self, resource_key, attributes, nbuckets, start):
        self.resource_key, self.attributes = resource_key, attributes
        self.calls = 0.0
        self.sum = 0.0
        self.buckets = np.zeros(nbuckets, dtype=np.float64)
        self.min, self.max = float("inf"), float("-inf")
        self.start = self.updated = start


def _number(v: float):
    r = round(v)
    return int(r) if abs(v - r) < 1e-9 else float(v)


class SpanMetrics(Consumer):
    def __init__(self, settings, config: SpanMetricsConfig, next_consumer):
        self.id = str(settings.id)
        self.config = config
        self.next = next_consumer
        hc = config.histogram
        self._ns_per_unit = 1e6 if hc.unit == "ms" else 1e9
        # via integer nanoseconds, so 1400ms is 1400.0, not 1.4 * 1000
        self.bounds = tuple(round(float(b) * 1e9) / self._ns_per_unit for b in hc.explicit.buckets)
        self._bounds_np = np.array(self.bounds, dtype=np.float64)
        self.temporality = DELTA if config.aggregation_temporality.endswith("DELTA") else CUMULATIVE
        prefix = f"{config.namespace}." if config.namespace else ""
        self.calls_name, self.duration_name = prefix + "calls", prefix + "duration"
        self.defaults = [d for d in DEFAULT_DIMENSIONS if d not in config.exclude_dimensions]
        self.extra = list(config.dimensions)
        self.series: dict[tuple, _Series] = {}
        self.resources: dict[int, bytes] = {}     # resource key -> definition payload
        self._resource_attrs: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    # -- consuming -------------------------------------------------------------
    def _resource(self, key: int, defs) -> dict:
        attrs = self._resource_attrs.get(key)
        if attrs is None:
            payload = defs.get(key)
            attrs = codec.decode_definition(payload).attributes if payload is not None else {}
            self._resource_attrs[key] = attrs
            if payload is not None:
                self.resources[key] = bytes(payload)
        return attrs

    def consume(self, records: RecordSet) -> None:
        try:
            self._aggregate(records)
        finally:
            records.settle()   # the spans are counted: this connector is done with them

    def _aggregate(self, records: RecordSet) -> None:
        cols = records.cached("span_columns", codec.decode_span_columns)
        n = len(cols)
        if n == 0:
            return
        weights = _span_weights(records, cols)
        dur_ns = cols.end_time_unix_nano.astype(np.int64) - cols.start_time_unix_nano.astype(np.int64)
        dur = np.maximum(dur_ns, 0) / self._ns_per_unit
        # group ids: resource, name, kind, status, then one column per extra dimension
        rkeys, rinv = np.unique(cols.resource_key, return_inverse=True)
        key_cols = [rinv.astype(np.int64), cols.name_id.astype(np.int64),
                    cols.kind.astype(np.int64), cols.status_code.astype(np.int64)]
        res_attrs = [self._resource(int(k), records.defs) for k in rkeys.tolist()]
        extra_values = []
        if self.extra:
            spans = [codec.decode_span(cols.payload(i)) for i in range(n)]
            for d in self.extra:
                vals, ids = [], {}
                col = np.empty(n, dtype=np.int64)
                for i, s in enumerate(spans):
                    v = s.attributes.get(d.name)
                    if v is None:
                        v = res_attrs[rinv[i]].get(d.name, d.default)
                    k = ids.get(v)
                    if k is None:
                        k = ids[v] = len(vals)
                        vals.append(v)
                    col[i] = k
                key_cols.append(col)
                extra_values.append(vals)
        keys = np.stack(key_cols, axis=1)
        groups, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        g = len(groups)
        calls = np.bincount(inv, weights=weights, minlength=g)
        sums = np.bincount(inv, weights=dur * weights, minlength=g)
        hist = np.zeros((g, len(self.bounds) + 1), dtype=np.float64)
        # explicit buckets are upper-inclusive: (b[i-1], b[i]]
        np.add.at(hist, (inv, np.searchsorted(self._bounds_np, dur, side="left")), weights)
        mins = np.full(g, np.inf)
        maxs = np.full(g, -np.inf)
        np.minimum.at(mins, inv, dur)
        np.maximum.at(maxs, inv, dur)
        now = time.time_ns()
        with self._lock:
            for gi, row in enumerate(groups.tolist()):
                rk = int(rkeys[row[0]])
                attrs = self._dimensions(res_attrs[row[0]], cols.names[row[1]], row[2], row[3],
                                         [extra_values[j][row[4 + j]] for j in range(len(self.extra))])
                skey = (rk, tuple(sorted(attrs.items(), key=lambda kv: kv[0])))
                s = self.series.get(skey)
                if s is None:
                    s = self.series[skey] = _Series(rk, attrs, len(self.bounds) + 1, now)
                s.calls += calls[gi]
                s.sum += sums[gi]
                s.buckets += hist[gi]
                s.min, s.max = min(s.min, mins[gi]), max(s.max, maxs[gi])
                s.updated = now

    def _dimensions(self, res_attrs, name, kind, status, extra) -> dict:
        out = {}
        for d in self.defaults:
            if d == "service.name":
                out[d] = res_attrs.get("service.name", "")
            elif d == "span.name":
                out[d] = name
            elif d == "span.kind":
                out[d] = KIND_NAMES.get(kind, "SPAN_KIND_UNSPECIFIED")
            elif d == "status.code":
                out[d] = STATUS_NAMES.get(status, "STATUS_CODE_UNSET")
        for d, v in zip(self.extra, extra):
            if v is not None:
                out[d.name] = v
        return out

    # -- emitting ---------------------------------------------------------------
    def flush(self) -> RecordSet | None:
        """Emit the current metrics into the metrics pipeline (and, with
        delta temporality, start over)."""
        now = time.time_ns()
        with self._lock:
            exp = float(self.config.metrics_expiration)
            if exp > 0:
                cutoff = now - int(exp * 1e9)
                for k in [k for k, s in self.series.items() if s.updated < cutoff]:
                    del self.series[k]
            series = list(self.series.values())
            snapshot = [(s.resource_key, dict(s.attributes), s.start, s.calls, s.sum,
                         s.buckets.copy(), s.min, s.max) for s in series]
            if self.temporality == DELTA:
                self.series.clear()
        if not snapshot:
            return None
        rs = self._records(snapshot, now)
        self.next.consume(rs)
        return rs

    def _records(self, snapshot, now) -> RecordSet:
        by_resource: dict[int, list] = {}
        for row in snapshot:
            by_resource.setdefault(row[0], []).append(row)
        scope_payload = codec.encode_scope(_Scope())
        skey = codec.definition_key(scope_payload)
        defs = {skey: scope_payload}
        parts, items = [], 0
        unit = self.config.histogram.unit
        for rk, rows in by_resource.items():
            if rk in self.resources:
                defs[rk] = self.resources[rk]
            calls = [_NumberPoint(a, start, now, _number(c)) for _, a, start, c, *_ in rows]
            parts.append(codec.encode_metric(
                _Metric(self.calls_name, "", "", Sum(calls, self.temporality)), rk, skey))
            items += len(calls)
            if self.config.histogram.disable:
                continue
            hpoints = []
            for _, a, start, _c, total, buckets, mn, mx in rows:
                cum = np.round(np.cumsum(buckets)).astype(np.int64)
                counts = np.diff(cum, prepend=0).tolist()
                hpoints.append(_HistPoint(a, start, now, int(cum[-1]), float(total),
                                          tuple(counts), self.bounds, float(mn), float(mx)))
            parts.append(codec.encode_metric(
                _Metric(self.duration_name, "", unit, Histogram(hpoints, self.temporality)),
                rk, skey))
            items += len(hpoints)
        lengths = np.array([len(p) for p in parts], dtype=np.uint32)
        offsets = np.zeros(len(parts), dtype=np.uint64)
        if len(parts) > 1:
            offsets[1:] = np.cumsum(lengths[:-1], dtype=np.uint64)
        # generated data carries no acks: the spans' acks settled on consume
        return RecordSet("metrics", b"".join(parts), offsets, lengths, defs, (), items)

    # -- lifecycle ----------------------------------------------------------------
    def flush_now(self) -> int:
        """Emit the span metrics now (the HTTP API's ``POST /api/v1/collect``)."""
        self.flush()
        return 0

    def _run(self) -> None:
        interval = float(self.config.metrics_flush_interval)
        while not self._stop.wait(interval):
            try:
                self.flush()
            except Exception:
                log.exception("connector %s: flushing span metrics failed", self.id)

    def start(self, host) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.id}-flush", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()     # what arrived since the last flush
        except Exception:
            log.exception("connector %s: final flush failed", self.id)


factory = Factory("spanmetrics", Kind.CONNECTOR, SpanMetricsConfig, SpanMetrics,
                  connects=(("traces", "metrics"),))
