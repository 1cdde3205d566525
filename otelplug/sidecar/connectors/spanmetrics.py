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
from otelplug.codec import views

from ..component import Factory, Kind
from ..config.decode import Duration
from ..consumer import Consumer
from otelplug.codec.recordset import RecordSet
from ..sampling import records as sampling_records
from ..sampling.tracestate import adjusted_count

log = logging.getLogger("otelplug.sidecar")

DEFAULT_BUCKETS = ["2ms", "4ms", "6ms", "8ms", "10ms", "50ms", "100ms", "200ms", "400ms",
                   "800ms", "1s", "1400ms", "2s", "5s", "10s", "15s"]
KIND_NAMES = {0: "SPAN_KIND_UNSPECIFIED", 1: "SPAN_KIND_INTERNAL", 2: "SPAN_KIND_SERVER",
              3: "SPAN_KIND_CLIENT", 4: "SPAN_KIND_PRODUCER", 5: "SPAN_KIND_CONSUMER"}
STATUS_NAMES = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}
DEFAULT_DIMENSIONS = ("service.name", "span.name", "span.kind", "status.code")
SCOPE_NAME = "spanmetricsconnector"
CUMULATIVE, DELTA = 2, 1


@dataclass
class Dimension:
    """``name``: a span or resource attribute that becomes a label.

    ``default``: the label value when the attribute is absent; none: series
    without the attribute have no such label.
    """
    name: str = ""
    default: str | None = None

    def validate(self):
        return [] if self.name else [(("name",), "must be set")]


@dataclass
class ExplicitBuckets:
    """``buckets``: the upper bounds of the duration buckets, increasing."""
    buckets: list[Duration] = field(default_factory=lambda: [Duration.parse(b) for b in DEFAULT_BUCKETS])

    def validate(self):
        b = list(self.buckets)
        if any(y <= x for x, y in zip(b, b[1:])):
            return [(("buckets",), "must be strictly increasing")]
        return []


@dataclass
class HistogramConfig:
    """``disable``: make no duration histogram (calls only).

    ``unit``: the histogram's unit, milliseconds or seconds.

    ``explicit``: explicit bucket bounds.
    """
    disable: bool = False
    unit: Literal["ms", "s"] = "ms"
    explicit: ExplicitBuckets = field(default_factory=ExplicitBuckets)


@dataclass
class SpanMetricsConfig:
    """``histogram``: the duration histogram of each series.

    ``dimensions``: attributes that split series, after the default ones
    (service.name, span.name, span.kind, status.code).

    ``exclude_dimensions``: default dimensions left out.

    ``aggregation_temporality``: cumulative totals, or deltas since the last
    flush.

    ``namespace``: the prefix of the metric names (``calls``, ``duration``).

    ``metrics_flush_interval``: how often the metrics are sent on.
    """
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
def _span_weights(records: RecordSet, cols) -> np.ndarray:
    """Adjusted counts of every span of ``cols``: only spans with a
    non-empty tracestate (found without a decode) are read in Python."""
    weights = np.ones(len(cols), dtype=np.float64)
    if len(cols) == 0:
        return weights
    spans = records.select(cols.row)
    info = sampling_records.tracestate_info(spans)
    for i in np.flatnonzero(~info.empty).tolist():
        try:
            header = sampling_records.read_tracestate(spans, info, i)
        except UnicodeDecodeError:      # corrupt bytes: the span counts once
            continue
        if "ot=" in header:
            weights[i] = adjusted_count(header)
    return weights


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
        scope_payload = codec.encode_scope(views.Scope(SCOPE_NAME))
        skey = codec.definition_key(scope_payload)
        defs = {skey: scope_payload}
        parts, items = [], 0
        unit = self.config.histogram.unit
        for rk, rows in by_resource.items():
            if rk in self.resources:
                defs[rk] = self.resources[rk]
            calls = [views.NumberPoint(a, start, now, _number(c)) for _, a, start, c, *_ in rows]
            parts.append(codec.encode_metric(
                views.Metric(self.calls_name, "", "", views.Sum(calls, self.temporality, True)),
                rk, skey))
            items += len(calls)
            if self.config.histogram.disable:
                continue
            hpoints = []
            for _, a, start, _c, total, buckets, mn, mx in rows:
                cum = np.round(np.cumsum(buckets)).astype(np.int64)
                counts = np.diff(cum, prepend=0).tolist()
                hpoints.append(views.HistogramPoint(a, start, now, int(cum[-1]), float(total),
                                                    tuple(counts), self.bounds, float(mn),
                                                    float(mx)))
            parts.append(codec.encode_metric(
                views.Metric(self.duration_name, "", unit,
                             views.Histogram(hpoints, self.temporality)),
                rk, skey))
            items += len(hpoints)
        # generated data carries no acks: the spans' acks settled on consume
        return RecordSet.from_parts("metrics", parts, defs, (), items)

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
