"""The state one ``analytics`` connector shares between its traces and
logs instances: the windowed aggregators (one per signal), the anomaly
detector, the rule evaluators, and the thread that closes windows.

The service makes one connector instance per exporting signal, both with
the same config object; the core is looked up by that object, so a
config (and a reload, which decodes a new one) gets exactly one core.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np

from otelplug.analytics.alerts import Rule
from otelplug.analytics.anomaly import Detector
from otelplug.analytics.rules import evaluator, labels_key, window_metric
from otelplug.analytics.windows import StreamAggregator, StreamConfig, WindowSpec

from otelplug.codec.recordset import RecordSet
from ...telemetry import Telemetry
from . import output
from .columns import Interner, Resources, log_items, span_items
from .config import AnalyticsConfig

log = logging.getLogger("otelplug.sidecar")
NS = 1_000_000_000
_END_OF_TIME = 1 << 62
_cores: dict[int, "Core"] = {}
_cores_lock = threading.Lock()


def core_for(cid: str, config: AnalyticsConfig, telemetry) -> "Core":
    with _cores_lock:
        core = _cores.get(id(config))
        if core is None or core.config is not config:
            core = _cores[id(config)] = Core(cid, config, telemetry)
        return core


class _Locked:
    """An evaluator read by the alert engine's thread while batches feed it."""

    def __init__(self, inner, lock):
        self.inner, self.lock = inner, lock

    def active(self, now_ns):
        with self.lock:
            return dict(self.inner.active(now_ns))

    def status(self) -> dict:
        with self.lock:
            return self.inner.status()


class Core:
    def __init__(self, cid: str, config: AnalyticsConfig, telemetry):
        self.id, self.config = cid, config
        self.lock = threading.Lock()
        self.resources = Resources()
        self.interner = Interner()
        specs = [WindowSpec(w.name, w.type, int(w.size * NS), int(w.step * NS), int(w.gap * NS))
                 for w in config.windows]
        self.stream_config = StreamConfig(
            specs, int(config.allowed_lateness * NS), int(config.watermark_delay * NS), 0,
            int(config.max_clock_skew * NS), config.cardinality_limit, int(config.group_expiry * NS),
            config.relative_accuracy)
        self.aggs: dict[str, StreamAggregator] = {}
        self.dims = {s: config.group_dimensions(s) for s in ("traces", "logs")}
        a = config.anomaly
        self.detector = Detector(a.threshold, a.history, a.min_samples)
        now_ns = time.time_ns()
        self.evaluators = [(r, evaluator(r.kind, r.condition, now_ns)) for r in config.rules]
        self.rules = [Rule(r.name, _Locked(ev, self.lock), dict(r.labels), dict(r.annotations),
                           float(r.for_), float(r.keep_firing_for), r.kind) for r, ev in self.evaluators]
        self.scores: dict = {}
        self.outputs: dict[str, object] = {}
        self.users = 0
        self.events_out = None        # logs pipelines fed with alert events, if any
        self._ext = None
        self._stop = threading.Event()
        self._thread = None
        self.engine = None
        tel = telemetry if telemetry is not None else Telemetry()
        lab = ("connector", "signal")
        self._late = tel.counter("analytics_late_items", "items that arrived after their window closed", lab)
        self._future = tel.counter("analytics_future_items",
                                   "items stamped further ahead of the sidecar's clock than max_clock_skew", lab)
        self._overflow = tel.counter("analytics_overflow_items",
                                     "items counted in the overflow group (cardinality limit)", lab)
        self._expired = tel.counter("analytics_expired_groups", "groups forgotten after group_expiry idle", lab)
        self._windows = tel.counter("analytics_windows_emitted", "window results emitted (rows)", lab)
        self._groups = tel.gauge("analytics_groups", "groups tracked", lab)
        self._reported: dict = {}
        self._label_cache: dict = {}

    # -- feeding ------------------------------------------------------------------
    def aggregator(self, signal: str) -> StreamAggregator:
        agg = self.aggs.get(signal)
        if agg is None:
            agg = self.aggs[signal] = StreamAggregator(self.stream_config)
        return agg

    def add(self, signal: str, records: RecordSet, now_ns: int | None = None) -> None:
        now_ns = time.time_ns() if now_ns is None else now_ns
        dims = self.dims[signal]
        with self.lock:      # the interner and aggregators are shared by both signals' threads
            generation = self.interner.generation
            if signal == "traces":
                items = span_items(records, self.resources, dims, self.config.dimensions, self.interner)
            else:
                items = log_items(records, self.resources, dims, self.config.dimensions)
            if not len(items.time):
                return
            agg = self.aggregator(signal)
            if self.interner.generation != generation:
                agg.groups.forget_codes()     # the interner started over: old codes mean nothing
            agg.add(items.keys, items.attributes(dims), items.inverse, items.time,
                    items.value, items.error, now_ns, items.codes)
            for _r, ev in self.evaluators:
                if not ev.needs_windows:
                    ev.observe_items(items.batch, now_ns)

    # -- closing windows --------------------------------------------------------------
    def flush(self, now_ns: int | None = None) -> None:
        now_ns = time.time_ns() if now_ns is None else now_ns
        out, findings = [], []
        with self.lock:
            for signal, agg in self.aggs.items():
                results = agg.advance(now_ns)
                attrs = (lambda g, a=agg: a.groups.attributes[g] if g < len(a.groups.attributes) else None)
                scores = self._score(signal, results, attrs, now_ns) if results else {}
                findings += [(k, s) for k, (s, _end) in scores.items() if s.state == "anomalous"]
                for r, ev in self.evaluators:
                    if ev.needs_windows and r.condition.signal == signal and results:
                        ev.observe_windows(results, attrs, {k[1:]: v[0] for k, v in scores.items()
                                                            if k[0] == signal})
                if results and signal in self.outputs:
                    out.append((signal, output.encode(self.config.namespace, signal, results, attrs,
                                                      {k[1:]: v for k, v in scores.items()
                                                       if k[0] == signal and v[0].state != "learning"})))
                self._count(signal, agg, results)
        for (signal, window, metric, labels), s in findings:
            # an anomaly is a finding: logged, and an event of the alerts extension
            ev = {"event": "analytics.anomaly", "connector": self.id, "signal": signal, "window": window,
                  "metric": metric, "labels": dict(labels), "value": s.value, "baseline": s.baseline,
                  "score": round(s.score, 3), "time": now_ns / NS}
            log.info("connector %s: anomaly in %s %s of %s: %g (baseline %g, score %.1f)", self.id,
                     window, metric, dict(labels), s.value, s.baseline, s.score)
            if self.engine is not None:
                self.engine.on_event(ev)      # the extension passes it to every sink, this one too
            else:
                self._on_event(ev)
        for signal, (parts, items) in out:
            if parts:
                self.outputs[signal].consume(
                    RecordSet.from_parts("metrics", parts, output.definitions(), items=items))

    def _labels(self, signal, agg, gid: int) -> tuple:
        """A group's sorted label tuple, cached until groups expire (ids
        are reused then)."""
        cache, expired = self._label_cache.get(signal, ({}, -1))
        if expired != agg.groups.expired:
            cache = {}
            self._label_cache[signal] = (cache, agg.groups.expired)
            if expired >= 0:
                # groups expired: so do their anomaly baselines
                live = {labels_key(a) for a in agg.groups.attributes if a is not None}
                self.detector.forget(lambda k: k[0] == signal and k[3] not in live)
        lab = cache.get(gid)
        if lab is None:
            attrs = agg.groups.attributes[gid] if gid < len(agg.groups.attributes) else None
            lab = cache[gid] = labels_key(attrs or {})
        return lab

    def _score(self, signal, results, attrs, now_ns) -> dict:
        scores = {}
        agg = self.aggs[signal]
        for r in results:
            labels = [self._labels(signal, agg, g) for g in r.group.tolist()]
            ends = r.end.tolist()
            for metric in self.config.anomaly.metrics:
                vals = window_metric(r, metric)
                ok = np.flatnonzero(~np.isnan(vals))      # NaN: no value for this group
                keys = [(signal, r.window, metric, labels[i]) for i in ok.tolist()]
                for k, i, s in zip(keys, ok.tolist(), self.detector.observe_many(keys, vals[ok])):
                    if s is not None:
                        scores[k] = (s, int(ends[i]))
        return scores

    def _count(self, signal, agg, results) -> None:
        cur = {"late": agg.late, "future": agg.future, "overflow": agg.groups.overflow_items,
               "expired": agg.groups.expired}
        prev = self._reported.setdefault(signal, dict.fromkeys(cur, 0))
        lab = {"connector": self.id, "signal": signal}
        for name, fam in (("late", self._late), ("future", self._future), ("overflow", self._overflow),
                          ("expired", self._expired)):
            fam.add(cur[name] - prev[name], **lab)
        self._reported[signal] = cur
        self._windows.add(sum(len(r) for r in results), **lab)
        self._groups.set(len(agg.groups), **lab)

    # -- lifecycle ------------------------------------------------------------------
    def attach(self, signal: str, consumer, host) -> None:
        metrics, logs = output.split_by_signal(consumer)
        with self.lock:
            if metrics is not None:
                self.outputs[signal] = metrics
            if logs is not None and self.events_out is None:
                self.events_out = logs
            self.users += 1
            first = self.users == 1
        if not first:
            return
        if self.config.alerts:
            ext = host.extension(self.config.alerts) if host is not None else None
            if ext is None or not hasattr(ext, "engine"):
                raise RuntimeError(f"connectors::{self.id}::alerts: no alerts extension "
                                   f"{self.config.alerts!r} in service::extensions")
            self.engine = ext.engine
            self.engine.set_rules(self.rules, owner=self.id)
            if hasattr(ext, "add_sink"):
                ext.add_sink(self._on_event)
                self._ext = ext
        self._thread = threading.Thread(target=self._run, name=f"{self.id}-windows", daemon=True)
        self._thread.start()

    def _on_event(self, ev: dict) -> None:
        """Alert state changes of this connector's rules (and its anomaly
        findings) as log records into the logs pipelines it feeds."""
        out = self.events_out
        if out is None:
            return
        name = ev.get("event", "")
        if name.startswith("alert.") and ev.get("alert.name") not in {r.name for r in self.rules}:
            return      # another connector's rule
        if name.startswith("analytics.") and ev.get("connector") != self.id:
            return
        rec = output.event_record(ev)
        out.consume(RecordSet.from_parts("logs", [rec], output.definitions(), items=1))

    def _run(self) -> None:
        while not self._stop.wait(float(self.config.flush_interval)):
            try:
                self.flush()
            except Exception:
                log.exception("connector %s: closing windows failed", self.id)

    def detach(self) -> None:
        with self.lock:
            self.users -= 1
            last = self.users <= 0
        if not last:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush(_END_OF_TIME)    # what is still open is reported, not dropped
        except Exception:
            log.exception("connector %s: final flush failed", self.id)
        if self.engine is not None:
            self.engine.drop_rules(self.id, self.rules)
        if self._ext is not None:
            self._ext.remove_sink(self._on_event)
        with _cores_lock:
            if _cores.get(id(self.config)) is self:
                del _cores[id(self.config)]
