"""tail_sampling: the Collector's tailsamplingprocessor over record batches.

Spans are grouped by trace id as they arrive; ``decision_wait`` after a
trace's first span the policies decide, and a sampled trace's spans go
downstream as one RecordSet.  Configuration, policy semantics and the way
decisions combine follow the contrib processor (see ``config.py``,
``decision.py`` and ``policies/``).

Memory.  At most ``num_traces`` traces are held: a new trace beyond that
evicts the oldest (counted as dropped too early when it was still
undecided), and a trace buffers at most ``max_trace_bytes`` of records.
Decided traces keep only a small summary until evicted, so late spans
follow their decision (the Collector's "scenario 1"); the optional
``decision_cache`` tables remember decisions beyond that.

Acks.  Buffered spans must not pin ring memory for ``decision_wait``: the
records of undecided traces are copied into the trace's own bytes and the
incoming batch's acks are settled right away (spans forwarded at once --
late spans of sampled traces -- carry them instead).  As with the
Collector, traces buffered but not yet decided are lost if the sidecar
dies.

Per batch, the work is numpy over the columns (unique trace ids, per-trace
min/max/count/status reductions, cache lookups) plus one Python step per
distinct trace; policies run per trace at decision time, and only those
that look inside spans decode them.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict

import numpy as np

from otelplug.codec import types as wire

from ...component import Factory, Kind
from ...consumer import Refused
from ...helpers.processor import Processor, log
from ...sampling.attributes import ResourceAttributes
from ...sampling.decisions import DecisionTable, trace_keys
from ...sampling.records import concat_owned, span_columns
from .config import TailSamplingConfig
from .decision import Decision, combine, is_sampled
from .policies import build
from .trace import Trace

_BUFFER, _FORWARD, _DROP = 0, 1, 2


class _Ctx:
    """What policies may ask of the processor."""

    def __init__(self, proc):
        self._p = proc

    def now(self) -> float:
        return self._p.clock()

    def resource(self, key: int) -> dict:
        return self._p._resources.get(self._p._defs, key)

    def trace_resources(self, trace) -> set:
        keys = set()
        for piece, raw_lens in zip(trace.pieces, trace.lengths):
            lens = np.frombuffer(raw_lens, "<u4")
            offs = np.zeros(len(lens), np.int64)
            offs[1:] = np.cumsum(lens[:-1])
            arr = np.frombuffer(piece, np.uint8)
            raw = arr[offs[:, None] + wire.SPAN_RESOURCE_KEY_AT + np.arange(8)]
            keys.update(np.ascontiguousarray(raw).view("<u8")[:, 0].tolist())
        return keys


class TailSamplingProcessor(Processor):
    def __init__(self, settings, config: TailSamplingConfig, next_consumer):
        super().__init__(settings, config, next_consumer)
        self.clock = settings.extra.get("clock", time.monotonic)
        self.policies = [build(p) for p in config.policy_configs()]
        # a lone policy that cannot fail or return inverted/drop decisions
        # needs no combination step
        self._needs_guard = type(self.policies[0]).__module__.rsplit(".", 1)[-1] != "basic"
        self.wait = float(config.decision_wait)
        # undecided traces in arrival order, and decided ones (a summary each,
        # so late spans follow the decision) in decision order; together at
        # most num_traces
        self._pending: OrderedDict[bytes, Trace] = OrderedDict()
        self._decided: OrderedDict[bytes, Trace] = OrderedDict()
        self._sampled_cache = DecisionTable(config.decision_cache.sampled_cache_size)
        self._not_sampled_cache = DecisionTable(config.decision_cache.non_sampled_cache_size)
        self._defs: dict = {}
        self._resources = ResourceAttributes()
        self._ctx = _Ctx(self)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer = None
        self.memory = 0            # bytes held by buffered traces (see Trace.memory)
        self._metrics(settings.telemetry)

    def _metrics(self, tel):
        p = "processor_tail_sampling_"
        lab = ("processor",)
        self.m_policy = tel.counter(p + "count_traces_sampled",
                                    "Count of traces that were sampled or not per sampling policy",
                                    lab + ("policy", "sampled"))
        self.m_global = tel.counter(p + "global_count_traces_sampled",
                                    "Global count of traces that were sampled or not by at least one "
                                    "policy", lab + ("sampled",))
        self.m_spans = tel.counter(p + "count_spans_sampled",
                                   "Count of spans that were sampled or not", lab + ("sampled",))
        self.m_early = tel.counter(p + "sampling_trace_dropped_too_early",
                                   "Count of traces that needed to be dropped before the configured "
                                   "wait time", lab)
        self.m_new = tel.counter(p + "new_trace_id_received", "Counts the arrival of new traces", lab)
        self.m_late_sum = tel.counter(p + "sampling_late_span_age_seconds_sum",
                                      "Total time since the trace's decision, over late spans", lab)
        self.m_late = tel.counter(p + "sampling_late_span_age_count",
                                  "Spans that arrived after their trace's decision", lab)
        self.m_removal_sum = tel.counter(p + "sampling_trace_removal_age_seconds_sum",
                                         "Total time traces were held before removal", lab)
        self.m_removal = tel.counter(p + "sampling_trace_removal_age_count",
                                     "Traces removed from memory", lab)
        self.m_latency_sum = tel.counter(p + "sampling_decision_timer_latency_seconds_sum",
                                         "Time spent deciding and passing on sampled traces", lab)
        self.m_latency = tel.counter(p + "sampling_decision_timer_latency_count",
                                     "Decision rounds", lab)
        self.m_errors = tel.counter(p + "sampling_policy_evaluation_error",
                                    "Count of sampling policy evaluation errors", lab)
        self.m_cache = tel.counter(p + "early_releases_from_cache_decision",
                                   "Spans released by a cached decision", lab + ("sampled",))
        self.m_too_large = tel.counter(p + "spans_dropped_trace_too_large",
                                       "Spans dropped because their trace reached max_trace_bytes", lab)
        self.g_traces = tel.gauge(p + "sampling_traces_on_memory",
                                  "Tracks the number of traces current on memory", lab)
        self.g_memory = tel.gauge(p + "memory_bytes", "Bytes held by buffered traces", lab)

    # -- intake ------------------------------------------------------------------
    def consume(self, records) -> None:
        lab = {"processor": self.id, "otel_signal": records.signal}
        self._in.add(records.items, **lab)
        try:
            forward, dropped = self._ingest(records)
        except Exception:
            log.exception("%s failed on a batch of %d spans; dropping it", self.id, records.items)
            self._failed.add(records.items, **lab)
            records.settle(ok=False)
            return
        self._dropped.add(dropped, **lab)
        if forward is None:
            records.settle()          # what we keep was copied; the rest is dropped
            return
        self._out.add(forward.items, **lab)
        self.next.consume(forward)

    def _ingest(self, records):
        cols = span_columns(records)
        n = len(cols)
        dropped = len(records) - n
        if n == 0:
            return None, dropped
        now = self.clock()
        tid = np.ascontiguousarray(cols.trace_id)
        uniq, first, inv = np.unique(tid.view("V16").ravel(), return_index=True,
                                     return_inverse=True)
        inv = inv.ravel()
        ukeys = trace_keys(tid[first])
        hit_s, _ = self._sampled_cache.lookup(ukeys)
        hit_n, _ = self._not_sampled_cache.lookup(ukeys)
        ids = uniq.tolist()
        action = np.zeros(len(ids), np.int8)
        late_age, late_n = 0.0, 0
        per_trace_spans = np.bincount(inv, minlength=len(ids))
        with self._lock:
            self._defs.update(records.defs)
            pending, decided = self._pending, self._decided
            for j, k in enumerate(ids):
                if k in pending:
                    continue
                t = decided.get(k)
                if t is not None:
                    action[j] = _FORWARD if t.decided else _DROP
                    late_age += (now - t.decided_at) * int(per_trace_spans[j])
                    late_n += int(per_trace_spans[j])
                elif hit_s[j]:
                    action[j] = _FORWARD
                elif hit_n[j]:
                    action[j] = _DROP
            span_action = action[inv]
            buffered = np.flatnonzero(span_action == _BUFFER)
            if len(buffered):
                dropped += self._buffer(records, cols, buffered, inv, ids, now)
            self._evict(now)
            self._gauges()
        cached = (action != _BUFFER) & (hit_s | hit_n)
        if cached.any():
            spans = per_trace_spans[cached & hit_s].sum()
            self.m_cache.add(int(spans), processor=self.id, sampled="true")
            self.m_cache.add(int(per_trace_spans[cached & hit_n].sum()), processor=self.id,
                             sampled="false")
        if late_n:
            self.m_late.add(late_n, processor=self.id)
            self.m_late_sum.add(late_age, processor=self.id)
        dropped += int((span_action == _DROP).sum())
        fwd = np.flatnonzero(span_action == _FORWARD)
        if len(fwd) == 0:
            return None, dropped
        return records.select(cols.row[fwd]), dropped

    def _buffer(self, records, cols, rows, inv, ids, now) -> int:
        """Copy the spans at column rows ``rows`` into their traces.  Returns
        the number of spans refused for size."""
        order = rows[np.argsort(inv[rows], kind="stable")]
        groups = inv[order]
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        ends = np.r_[starts[1:], len(order)]
        rec_idx = cols.row[order]
        lens = records.lengths[rec_idx].astype(np.int64)
        nbytes = np.add.reduceat(lens, starts)
        t_min = np.minimum.reduceat(cols.start_time_unix_nano[order], starts).tolist()
        t_max = np.maximum.reduceat(cols.end_time_unix_nano[order], starts).tolist()
        status = np.bitwise_or.reduceat(np.left_shift(1, cols.status_code[order].astype(np.int64)),
                                        starts).tolist()
        mv = memoryview(records.buf)
        offs = records.offsets[rec_idx].tolist()
        chunk = b"".join([mv[o:o + n] for o, n in zip(offs, lens.tolist())])
        lens_raw = lens.astype("<u4").tobytes()
        pos = np.zeros(len(starts) + 1, np.int64)
        pos[1:] = np.cumsum(nbytes)
        pos = pos.tolist()
        starts_l, ends_l = starts.tolist(), ends.tolist()
        limit = self.config.max_trace_bytes
        refused = 0
        pending = self._pending
        new = 0
        for g, u in enumerate(groups[starts].tolist()):
            k = ids[u]
            t = pending.get(k)
            if t is None:
                t = pending[k] = Trace(k, now)
                new += 1
                self.memory += t.memory
            nb = pos[g + 1] - pos[g]
            s0, s1 = starts_l[g], ends_l[g]
            if t.nbytes + nb > limit:
                refused += s1 - s0
                t.dropped_spans += s1 - s0
                continue
            before = t.memory
            t.add(chunk[pos[g]:pos[g + 1]], lens_raw[4 * s0:4 * s1], s1 - s0, t_min[g], t_max[g],
                  status[g])
            self.memory += t.memory - before
        if refused:
            self.m_too_large.add(refused, processor=self.id)
        self.m_new.add(new, processor=self.id)
        return refused

    def _evict(self, now) -> None:
        """Keep num_traces: forget the oldest decided traces first; if
        undecided ones alone are too many, the oldest of those goes too
        (dropped too early, as in the Collector)."""
        excess = len(self._pending) + len(self._decided) - self.config.num_traces
        if excess <= 0:
            return
        removed, age, early, early_spans = 0, 0.0, 0, 0
        while excess > 0 and self._decided:
            _, old = self._decided.popitem(last=False)
            self.memory -= old.memory
            removed += 1
            age += now - old.arrival
            excess -= 1
        while excess > 0:
            _, old = self._pending.popitem(last=False)
            self.memory -= old.memory
            old.release()
            early += 1
            early_spans += old.span_count
            removed += 1
            age += now - old.arrival
            excess -= 1
        lab = {"processor": self.id}
        self.m_removal.add(removed, **lab)
        self.m_removal_sum.add(age, **lab)
        if early:
            self.m_early.add(early, **lab)
            self._dropped.add(early_spans, otel_signal="traces", **lab)

    def _gauges(self):
        self.g_traces.set(len(self._pending) + len(self._decided), processor=self.id)
        self.g_memory.set(self.memory, processor=self.id)

    # -- decisions ------------------------------------------------------------------
    def tick(self, final: bool = False) -> int:
        """Decide every trace whose decision_wait has passed (all pending ones
        when ``final``) and pass the sampled ones on.  Returns how many
        traces were decided."""
        t0 = time.perf_counter()
        now = self.clock()
        sampled: list[Trace] = []
        counts: Counter = Counter()
        with self._lock:
            due = []
            pending = self._pending
            while pending:
                t = next(iter(pending.values()))
                if not final and t.arrival + self.wait > now:
                    break
                pending.popitem(last=False)
                due.append(t)
            keep_keys, drop_keys = [], []
            decided = self._decided
            dropped_spans = 0
            for t in due:
                keep = self._decide(t, counts)
                t.decided, t.decided_at = keep, now
                decided[t.trace_id] = t
                if keep:
                    keep_keys.append(t.trace_id)
                    sampled.append(t)
                else:
                    drop_keys.append(t.trace_id)
                    dropped_spans += t.span_count
                    self.memory -= t.memory
                    t.release()
                    self.memory += t.memory
            pieces, lengths, nspans = [], [], 0
            for t in sampled:
                pieces.extend(t.pieces)
                lengths.append(t.record_lengths())
                nspans += t.span_count
                self.memory -= t.memory
                t.release()
                self.memory += t.memory
            self._remember(keep_keys, self._sampled_cache)
            self._remember(drop_keys, self._not_sampled_cache)
            defs = dict(self._defs)
            self._gauges()
        lab = {"processor": self.id}
        self._dropped.add(dropped_spans, otel_signal="traces", **lab)
        for (policy, s), c in counts.items():
            self.m_policy.add(c, policy=policy, sampled=s, **lab)
        self.m_global.add(len(sampled), sampled="true", **lab)
        self.m_global.add(len(due) - len(sampled), sampled="false", **lab)
        self.m_spans.add(nspans, sampled="true", **lab)
        self.m_spans.add(sum(t.span_count for t in due) - nspans, sampled="false", **lab)
        if sampled:
            out = concat_owned(pieces, lengths, "traces", defs)
            self._emit(out)
        self.m_latency.add(1, **lab)
        self.m_latency_sum.add(time.perf_counter() - t0, **lab)
        return len(due)

    def _decide(self, t: Trace, counts: Counter) -> bool:
        if len(self.policies) == 1 and not self._needs_guard:
            d = self.policies[0].evaluate(t, self._ctx)
            counts[(self.policies[0].name, "true" if is_sampled(d) else "false")] += 1
            return is_sampled(d)
        seen = set()
        for p in self.policies:
            try:
                d = p.evaluate(t, self._ctx)
            except Exception:
                log.exception("%s: policy %s failed", self.id, p.name)
                self.m_errors.add(1, processor=self.id)
                d = Decision.ERROR
            seen.add(d)
            counts[(p.name, "true" if is_sampled(d) else "false")] += 1
            if d == Decision.DROPPED:
                break
            if self.config.sample_on_first_match and d == Decision.SAMPLED:
                break
        return combine(seen)

    @staticmethod
    def _remember(keys: list, table: DecisionTable) -> None:
        if keys and table.size:
            ids = np.frombuffer(b"".join(keys), np.uint8).reshape(-1, 16)
            table.store(trace_keys(ids), 1)

    def _emit(self, out) -> None:
        lab = {"processor": self.id, "otel_signal": "traces"}
        self._out.add(out.items, **lab)
        try:
            self.next.consume(out)
        except Refused:
            log.warning("%s: downstream refused %d sampled spans; dropping them", self.id, out.items)
            self._failed.add(out.items, **lab)
        except Exception:
            log.exception("%s: downstream failed on %d sampled spans", self.id, out.items)
            self._failed.add(out.items, **lab)

    # -- lifecycle ------------------------------------------------------------------
    def start(self, host) -> None:
        self._timer = threading.Thread(target=self._run, name=f"{self.id}-decisions", daemon=True)
        self._timer.start()

    def _run(self) -> None:
        period = min(1.0, max(0.01, self.wait / 10))
        while not self._stop.wait(period):
            try:
                self.tick()
            except Exception:
                log.exception("%s: decision round failed", self.id)

    def shutdown(self) -> None:
        self._stop.set()
        if self._timer is not None and self._timer.is_alive():
            self._timer.join()
        if self.config.drop_pending_traces_on_shutdown:
            return
        self.tick(final=True)


factory = Factory("tail_sampling", Kind.PROCESSOR, TailSamplingConfig, TailSamplingProcessor,
                  signals=("traces",))
