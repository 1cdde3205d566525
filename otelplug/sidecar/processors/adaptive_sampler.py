"""adaptive_sampler: hold a target sampled rate with Jaeger's adaptive
sampling algorithm, consistently by trace id, keeping priority traces.

Rates.  Every ``calculation_interval`` the sampler looks at how many spans
(or traces, ``unit: traces``) it kept probabilistically -- overall and per
(service.name, span name), as the expected count (see ``_count``) -- and
recomputes the probabilities as Jaeger's
adaptive ``PostAggregator.calculateProbability`` does: keep the old value
while within ``delta_tolerance`` of the target, otherwise
``p * target / qps``, where an increase is capped per interval
(``percentage_increase_cap``: 1.0, Jaeger's, allows at most doubling) and
the result is clamped to ``[min_sampling_probability,
max_sampling_probability]``; when nothing was sampled the probability
doubles.  The QPS is a weighted average over the last
``buckets_for_calculation`` intervals with Jaeger's i^4 weights.  Jaeger
counts sampled root spans reported by its clients; the sidecar sees every
span, so the counts here are exact and need no sampler tags.  A span's
probability is the overall one, or the smaller of it and its operation's
when ``per_operation_target_samples_per_second`` is set.

Consistency.  A trace's threshold (OTEP 235) is fixed the first time the
sampler sees any of its spans -- from that span's operation -- and
remembered in a bounded trace-id table (``decision_cache_size``), so later
spans of the trace, from whichever process, get the same threshold even if
the probabilities were recomputed in between.  The randomness is the
trace id's low 56 bits, so other consistent samplers agree too.  Every
kept span carries ``ot=th:...`` in its tracestate (its adjusted count).

Priority.  Traces with an error status, a span at or above
``priority.latency_threshold``, or a span attribute listed in
``priority.attributes`` are kept: from the batch that shows the condition
on, the trace's threshold is 0 (``th:0``), remembered like any other.
Spans of that trace that came in *earlier* batches were already decided
with the trace's probabilistic threshold; to keep those as well, put a
short ``tail_sampling`` in front or raise the batch timeout -- this
processor holds no spans.  Priority-kept spans are not counted towards
the target.

Jaeger remote sampling.  The current probabilities are served at
``GET /sampling?service=NAME`` on ``endpoint`` as a SamplingStrategyResponse
in the JSON Jaeger v2 serves (checked against it in tests/interop), so
Jaeger-remote head samplers can follow.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from otelplug import codec

from ..component import Factory, Kind
from ..config.decode import Duration
from ..helpers.processor import Processor, log
from ..sampling import otep235 as th
from ..sampling import records as rec
from ..sampling import tracestate as ts
from ..sampling.attributes import ResourceAttributes, key_needle
from ..sampling.decisions import DecisionTable, trace_keys


@dataclass
class PriorityAttribute:
    """``key``: a span attribute whose presence keeps the trace."""
    key: str = ""
    values: list = field(default_factory=list)     # empty: the key's presence is enough


@dataclass
class PriorityConfig:
    """``error``: keep traces with a span whose status is error.

    ``latency_threshold``: keep traces with a span at least this long.

    ``attributes``: keep traces with a span carrying one of these attributes.
    """
    error: bool = True
    latency_threshold: Duration = Duration(0)       # 0: off
    attributes: list[PriorityAttribute] = field(default_factory=list)


@dataclass
class AdaptiveSamplerConfig:
    """``target_samples_per_second``: the sampled rate to hold, overall.

    ``per_operation_target_samples_per_second``: a target per (service.name,
    span name) as well; 0: none.

    ``unit``: what the rates count, spans or traces.

    ``calculation_interval``: how often the probabilities are recomputed.

    ``delta_tolerance``: keep the probability while the rate is within this
    fraction of the target.

    ``percentage_increase_cap``: the largest increase of a probability per
    interval (1.0: at most doubling).

    ``initial_sampling_probability``: the probability before the first
    calculation.

    ``min_sampling_probability``: the lowest probability a calculation gives.

    ``max_sampling_probability``: the highest probability a calculation gives.

    ``buckets_for_calculation``: intervals the rate is averaged over (i^4
    weights, as Jaeger's).

    ``aggregation_buckets``: intervals of counts kept.

    ``default_lower_bound_traces_per_second``: served to Jaeger-remote head
    samplers with the probabilities.

    ``sampling_precision``: hex digits of the OTEP 235 thresholds written.

    ``decision_cache_size``: trace ids whose threshold is remembered, so
    later spans of a trace get the same decision.

    ``priority``: traces kept whatever the probability.

    ``endpoint``: where Jaeger remote sampling (``GET /sampling``) is served;
    "" disables it.
    """
    target_samples_per_second: float = 100.0
    per_operation_target_samples_per_second: float = 0.0
    unit: Literal["spans", "traces"] = "spans"
    calculation_interval: Duration = Duration(10.0)
    # Jaeger's default is 0.3, to ride out the noise of counting sampled
    # spans; the expected counts here are exact, so a tight band is stable
    delta_tolerance: float = 0.05
    percentage_increase_cap: float = 1.0
    initial_sampling_probability: float = 0.001
    min_sampling_probability: float = 1e-5
    max_sampling_probability: float = 1.0
    buckets_for_calculation: int = 1
    aggregation_buckets: int = 10
    default_lower_bound_traces_per_second: float = 1.0 / 60
    sampling_precision: int = 4
    decision_cache_size: int = 1 << 16
    priority: PriorityConfig = field(default_factory=PriorityConfig)
    endpoint: str = "127.0.0.1:5778"                # Jaeger remote sampling; "" disables

    def validate(self):
        errs = []
        if self.target_samples_per_second <= 0:
            errs.append((("target_samples_per_second",), "must be positive"))
        if self.per_operation_target_samples_per_second < 0:
            errs.append((("per_operation_target_samples_per_second",), "must not be negative"))
        if self.calculation_interval <= 0:
            errs.append((("calculation_interval",), "must be positive"))
        if not 0 < self.delta_tolerance < 1:
            errs.append((("delta_tolerance",), "must be between 0 and 1"))
        if self.percentage_increase_cap <= 0:
            errs.append((("percentage_increase_cap",), "must be positive"))
        if not (0 < self.min_sampling_probability <= self.initial_sampling_probability
                <= self.max_sampling_probability <= 1):
            errs.append("need 0 < min_sampling_probability <= initial_sampling_probability "
                        "<= max_sampling_probability <= 1")
        if not 1 <= self.buckets_for_calculation <= self.aggregation_buckets:
            errs.append((("buckets_for_calculation",), "must be between 1 and aggregation_buckets"))
        if not 1 <= self.sampling_precision <= 14:
            errs.append((("sampling_precision",), "must be between 1 and 14"))
        for i, a in enumerate(self.priority.attributes):
            if not a.key:
                errs.append((("priority", "attributes", str(i), "key"), "a key is required"))
        return errs


# -- Jaeger's calculation -------------------------------------------------------------
def weights(n: int) -> np.ndarray:
    """Jaeger's WeightVectorCache: i^4 for i = n..1, normalised (newest first)."""
    w = np.arange(n, 0, -1, dtype=float) ** 4
    return w / w.sum()


def next_probability(old: float, qps: float, target: float, cfg: AdaptiveSamplerConfig) -> float:
    """``PostAggregator.calculateProbability`` with the
    PercentageIncreaseCappedCalculator, clamped to the configured range."""
    if abs(qps - target) / target < cfg.delta_tolerance:
        return old
    if qps == 0:
        new = old * 2.0
    else:
        factor = target / qps
        new = old * factor
        if factor > 1.0 and (new - old) / old > cfg.percentage_increase_cap:
            new = old + old * cfg.percentage_increase_cap
    return min(cfg.max_sampling_probability, max(cfg.min_sampling_probability, new))


class RateEstimator:
    """One probability and the sampled counts of the last intervals."""

    __slots__ = ("probability", "counts", "pending", "offered", "qps")

    def __init__(self, p0: float):
        self.probability = p0
        self.counts: list[float] = []     # qps per past interval, newest first
        self.pending = 0.0                # expected sampled in the current interval
        self.offered = 0                  # seen in the current interval
        self.qps = 0.0

    def close_interval(self, seconds: float, target: float, cfg) -> None:
        self.counts.insert(0, self.pending / seconds)
        del self.counts[cfg.aggregation_buckets:]
        recent = self.counts[:cfg.buckets_for_calculation]
        self.qps = float(np.dot(weights(len(recent)), recent))
        self.probability = next_probability(self.probability, self.qps, target, cfg)
        self.pending, self.offered = 0.0, 0


class AdaptiveSampler(Processor):
    def __init__(self, settings, config: AdaptiveSamplerConfig, next_consumer):
        super().__init__(settings, config, next_consumer)
        self.clock = settings.extra.get("clock", time.monotonic)
        self.overall = RateEstimator(config.initial_sampling_probability)
        self.operations: dict[tuple[str, str], RateEstimator] = {}
        self._table = DecisionTable(config.decision_cache_size)
        self._resources = ResourceAttributes()
        self._lock = threading.Lock()
        self._last_calc = None
        self._thresholds: dict[float, int] = {}
        self._ts_memo: dict[int, bytes] = {}
        self._prio_attrs = [(a.key, key_needle(a.key), set(a.values)) for a in config.priority.attributes]
        self.server = None
        self._stop = threading.Event()
        self._thread = None
        tel = settings.telemetry
        lab = ("processor",)
        self.m_sampled = tel.counter("processor_adaptive_sampler_count_spans_sampled",
                                     "Spans kept or dropped", lab + ("reason", "sampled"))
        self.g_prob = tel.gauge("processor_adaptive_sampler_probability",
                                "Current overall sampling probability", lab)
        self.g_qps = tel.gauge("processor_adaptive_sampler_sampled_per_second",
                               "Sampled rate measured over the last interval", lab)
        self.g_offered = tel.gauge("processor_adaptive_sampler_offered_per_second",
                                   "Offered rate measured over the last interval", lab)
        self.m_calc = tel.counter("processor_adaptive_sampler_calculations",
                                  "Probability recalculations", lab)

    # -- probabilities --------------------------------------------------------------
    def probability_for(self, op: tuple[str, str]) -> float:
        p = self.overall.probability
        if self.config.per_operation_target_samples_per_second > 0:
            est = self.operations.get(op)
            if est is not None:
                p = min(p, est.probability)
        return p

    def _threshold(self, p: float) -> int:
        t = self._thresholds.get(p)
        if t is None:
            if len(self._thresholds) > 10000:
                self._thresholds.clear()
            t = self._thresholds[p] = th.probability_to_threshold(
                max(p, th.MIN_SAMPLING_PROBABILITY), self.config.sampling_precision)
        return t

    def maybe_recalculate(self) -> bool:
        """Close the interval if calculation_interval has passed."""
        now = self.clock()
        with self._lock:
            if self._last_calc is None:
                self._last_calc = now
                return False
            elapsed = now - self._last_calc
            interval = float(self.config.calculation_interval)
            if elapsed < interval:
                return False
            # stay on the interval grid (a late tick must not stretch the next
            # interval); a gap of several intervals counts as one long one
            self._last_calc += interval * (elapsed // interval)
            cfg = self.config
            offered = self.overall.offered
            self.overall.close_interval(elapsed, cfg.target_samples_per_second, cfg)
            if cfg.per_operation_target_samples_per_second > 0:
                for est in self.operations.values():
                    est.close_interval(elapsed, cfg.per_operation_target_samples_per_second, cfg)
            else:
                for est in self.operations.values():
                    est.close_interval(elapsed, cfg.target_samples_per_second, cfg)
                    est.probability = self.overall.probability
        self.m_calc.add(1, processor=self.id)
        self.g_prob.set(self.overall.probability, processor=self.id)
        self.g_qps.set(self.overall.qps, processor=self.id)
        self.g_offered.set(offered / elapsed, processor=self.id)
        return True

    # -- the batch --------------------------------------------------------------------
    def process(self, records):
        self.maybe_recalculate()
        cols = rec.span_columns(records)
        n = len(cols)
        if n == 0:
            return None
        keys = trace_keys(cols.trace_id)
        ukeys, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        inv = inv.ravel()
        prio = self._priority_spans(records, cols)
        prio_trace = np.bincount(inv, weights=prio, minlength=len(ukeys)) > 0
        ops, op_codes = self._operations(records, cols)
        with self._lock:
            hit, stored = self._table.lookup(ukeys)
            uthr = stored.copy()
            new = np.flatnonzero(~hit)
            if len(new):
                # a new trace takes the threshold of the operation of its first span here
                probs = np.array([self.probability_for(op) for op in ops])
                op_thr = np.array([self._threshold(p) for p in probs.tolist()], np.uint64)
                uthr[new] = op_thr[op_codes[first[new]]]
            uthr[prio_trace] = th.ALWAYS_SAMPLE
            changed = ~hit | prio_trace
            self._table.store(ukeys[changed], uthr[changed])
            thr = uthr[inv]
            rnd = th.trace_id_randomness(cols.trace_id)
            keep = rnd >= thr
            self._count(ops, op_codes, thr, prio_trace[inv], inv, hit)
        n_prio = int((keep & prio_trace[inv]).sum())
        lab = {"processor": self.id}
        self.m_sampled.add(n_prio, reason="priority", sampled="true", **lab)
        self.m_sampled.add(int(keep.sum()) - n_prio, reason="probability", sampled="true", **lab)
        self.m_sampled.add(n - int(keep.sum()), reason="probability", sampled="false", **lab)
        if not keep.any():
            return None
        rows = cols.row[keep]
        kept = records.select(rows)
        info = rec.tracestate_info(kept)
        return rec.splice_tracestates(kept, info, self._tracestates(kept, info, thr[keep]))

    def _count(self, ops, op_codes, thr, prio, inv, hit):
        """Interval counters, in spans or (``unit: traces``) in traces first
        seen in this batch: offered, and the *expected* number kept by
        probability -- the sum of each item's sampling probability.  Jaeger
        counts the sampled items, a binomial estimate; the sidecar sees the
        unsampled ones too, so it can use the exact expectation and keep
        sampling noise out of the feedback loop."""
        if self.config.unit == "traces":
            _, idx = np.unique(inv, return_index=True)
            mask = np.zeros(len(inv), bool)
            mask[idx] = True
            mask &= ~hit[inv]
        else:
            mask = np.ones(len(inv), bool)
        p = (th.MAX_ADJUSTED_COUNT - thr.astype(np.float64)) / th.MAX_ADJUSTED_COUNT
        p[prio] = 0.0                        # priority keeps do not count towards the target
        p[~mask] = 0.0
        self.overall.offered += int(mask.sum())
        self.overall.pending += float(p.sum())
        oc = np.bincount(op_codes, weights=mask, minlength=len(ops))
        kc = np.bincount(op_codes, weights=p, minlength=len(ops))
        p0 = self.overall.probability
        for j, op in enumerate(ops):
            est = self.operations.get(op)
            if est is None:
                est = self.operations[op] = RateEstimator(p0)
            est.offered += int(oc[j])
            est.pending += float(kc[j])

    def _operations(self, records, cols):
        """Distinct (service.name, span name) of the batch and each span's
        index into them."""
        pair = cols.resource_key.astype(np.uint64) * np.uint64(1_000_003) + cols.name_id.astype(np.uint64)
        upair, first, codes = np.unique(pair, return_index=True, return_inverse=True)
        ops = []
        for i in first.tolist():
            svc = self._resources.get(records.defs, int(cols.resource_key[i])).get("service.name", "")
            ops.append((str(svc), cols.names[int(cols.name_id[i])]))
        return ops, codes.ravel()

    def _priority_spans(self, records, cols) -> np.ndarray:
        pc = self.config.priority
        prio = np.zeros(len(cols), bool)
        if pc.error:
            prio |= cols.status_code == 2
        if pc.latency_threshold > 0:
            dur = cols.end_time_unix_nano.astype(np.int64) - cols.start_time_unix_nano.astype(np.int64)
            prio |= dur >= int(pc.latency_threshold * 1e9)
        if self._prio_attrs:
            row_to_col = {r: i for i, r in enumerate(cols.row.tolist())}
            for key, needle, values in self._prio_attrs:
                for r in np.flatnonzero(rec.records_containing(records, needle)).tolist():
                    i = row_to_col.get(r)
                    if i is None or prio[i]:
                        continue
                    attrs = codec.decode_span(records.payload(r)).attributes
                    if key in attrs and (not values or attrs[key] in values):
                        prio[i] = True
        return prio

    def _tracestates(self, kept, info, thresholds):
        out = []
        for i, t in enumerate(thresholds.tolist()):
            if info.empty[i]:
                enc = self._ts_memo.get(t)
                if enc is None:
                    if len(self._ts_memo) > 10000:
                        self._ts_memo.clear()
                    enc = self._ts_memo[t] = rec.encode_nstr(ts.OTelState(t).header())
                out.append(enc)
                continue
            try:
                header = rec.read_tracestate(kept, info, i)
                st = ts.parse(header)
                # an arriving larger threshold (head sampled at a lower probability) stays
                st.threshold = t if st.threshold is None else max(st.threshold, t)
                out.append(rec.encode_nstr(st.header()))
            except ts.TraceStateError:
                out.append(None)
        return out

    # -- Jaeger remote sampling API ----------------------------------------------
    def strategy(self, service: str) -> dict:
        """SamplingStrategyResponse (Jaeger's JSON) for ``service``."""
        cfg = self.config
        with self._lock:
            default = self.overall.probability
            ops = sorted((op, self.probability_for(op)) for op in self.operations if op[0] == service)
        # Jaeger v2's remote_sampling extension writes the strategy type as
        # the integer of its Thrift enum (0: PROBABILISTIC), for clients
        # generated by old Thrift versions; so does this, and it names the
        # same keys (no upper bound is configured here: 0, as in Jaeger)
        return {
            "strategyType": 0,
            "probabilisticSampling": {"samplingRate": default},
            "operationSampling": {
                "defaultSamplingProbability": default,
                "defaultLowerBoundTracesPerSecond": cfg.default_lower_bound_traces_per_second,
                "perOperationStrategies": [
                    {"operation": name, "probabilisticSampling": {"samplingRate": p}}
                    for (_, name), p in ops],
                "defaultUpperBoundTracesPerSecond": 0,
            },
        }

    def claims(self) -> list[str]:
        """What it holds exclusively while running (see Service.claims)."""
        return [f"tcp {self.config.endpoint}"] if self.config.endpoint else []

    def start(self, host) -> None:
        if self.config.endpoint:
            self.server = _StrategyServer(self, self.config.endpoint)
            self.server.start()
        self._thread = threading.Thread(target=self._run, name=f"{self.id}-rates", daemon=True)
        self._thread.start()

    def _run(self):
        period = min(1.0, float(self.config.calculation_interval) / 4)
        while not self._stop.wait(period):
            try:
                self.maybe_recalculate()
            except Exception:
                log.exception("%s: rate calculation failed", self.id)

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()
        if self.server is not None:
            self.server.shutdown()


class _StrategyServer:
    """``GET /sampling?service=NAME`` (Jaeger agent/collector port 5778)."""

    def __init__(self, sampler: AdaptiveSampler, address: str):
        from ..helpers.http_server import NOT_FOUND, GetServer, Response

        def respond(path, query, headers):
            if path not in ("/sampling", "/"):
                return NOT_FOUND
            service = query.get("service", [""])[0]
            if not service:
                return Response(400, body=b"'service' parameter must be provided\n")
            return Response(content_type="application/json",
                            body=json.dumps(sampler.strategy(service)).encode())

        self.server = GetServer(address, respond, "otelplug-sampling-api")
        self.address = self.server.address

    def start(self):
        self.server.start()

    def shutdown(self):
        self.server.shutdown()


factory = Factory("adaptive_sampler", Kind.PROCESSOR, AdaptiveSamplerConfig, AdaptiveSampler,
                  signals=("traces",))
