"""trace_assembly: whole traces out of spans, analysed once each
(traces -> logs).

Spans are held per trace (``otelplug.traces.assembly``): a trace is
complete when its root has ended and no span of it came for
``quiet_gap``; it is closed anyway after ``max_wait``, or early when more
than ``max_spans`` spans are held.  Each closed trace is analysed
(``otelplug.traces``: critical path, self/child time, breakdown per
operation and service, anomalies) and leaves as one log record, event
``otelplug.trace.analysis`` (``records.py``), which the ``store`` exporter
keeps in its trace-analysis table and any other logs exporter can carry.
A late span re-opens its trace, which is analysed again with
``otelplug.trace.revision`` + 1.

Spans are copied out of ring memory into the assembler's arrays, so their
acks settle as soon as they are buffered (as tail_sampling does); traces
still open when the sidecar dies are not analysed.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from otelplug import codec
from otelplug.traces.assembly import AssemblyConfig, Batch, TraceAssembler

from ...component import Factory, Kind
from ...config.decode import Duration
from ...consumer import Consumer
from ...sampling.attributes import ResourceAttributes
from .records import analysis_records

log = logging.getLogger("otelplug.sidecar")


@dataclass
class TraceAssemblyConfig:
    """``quiet_gap``: a trace whose root has ended is complete when no span
    of it arrived for this long.

    ``max_wait``: a trace is closed this long after its first span even if
    incomplete (flagged: missing root, orphans).

    ``max_spans``: at most this many spans are held; past it the oldest
    traces are closed early.

    ``late_window``: how long a closed trace is kept so that late spans are
    re-attached to it.

    ``max_retained_spans``: at most this many spans are kept for late spans.

    ``poll_interval``: how often complete traces are looked for.
    """
    quiet_gap: Duration = Duration(5.0)
    max_wait: Duration = Duration(60.0)
    max_spans: int = 1_000_000
    late_window: Duration = Duration(30.0)
    max_retained_spans: int = 200_000
    poll_interval: Duration = Duration(1.0)

    def validate(self):
        errs = []
        for name in ("quiet_gap", "max_wait", "poll_interval"):
            if getattr(self, name) <= 0:
                errs.append(((name,), "must be positive"))
        if self.max_wait < self.quiet_gap:
            errs.append((("max_wait",), "must not be shorter than quiet_gap"))
        for name in ("max_spans", "max_retained_spans"):
            if getattr(self, name) <= 0:
                errs.append(((name,), "must be positive"))
        if self.late_window < 0:
            errs.append((("late_window",), "must not be negative"))
        return errs


class TraceAssembly(Consumer):
    def __init__(self, settings, config: TraceAssemblyConfig, next_consumer):
        self.id = str(settings.id)
        self.config = config
        self.next = next_consumer
        self.clock = settings.extra.get("clock", time.monotonic)
        self.assembler = TraceAssembler(AssemblyConfig(
            quiet_gap=float(config.quiet_gap), max_wait=float(config.max_wait),
            max_spans=config.max_spans, late_window=float(config.late_window),
            max_retained_spans=config.max_retained_spans))
        self._resources = ResourceAttributes()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        tel = settings.telemetry
        lab = ("connector",)
        self.m_closed = tel.counter("connector_trace_assembly_traces_closed",
                                    "Traces closed and analysed, by why they were closed",
                                    lab + ("reason",))
        self.m_late = tel.counter("connector_trace_assembly_late_spans",
                                  "Spans that re-opened a closed trace", lab)
        self.m_anomalies = tel.counter("connector_trace_assembly_anomalies",
                                       "Bad input met in analysed traces, by kind",
                                       lab + ("anomaly",))
        self.m_emit_failed = tel.counter("connector_trace_assembly_emit_failed",
                                         "Trace analyses the next consumer refused", lab)
        self.g_spans = tel.gauge("connector_trace_assembly_spans_buffered",
                                 "Spans held in open traces", lab)
        self.g_traces = tel.gauge("connector_trace_assembly_traces_open", "Open traces", lab)
        self._late_seen = 0
        tel.on_collect(self._refresh)

    def _refresh(self) -> None:
        self.g_spans.set(self.assembler.buffered, connector=self.id)
        self.g_traces.set(self.assembler.open_traces(), connector=self.id)

    def _service(self, key: int, defs) -> str:
        return str(self._resources.get(defs, key).get("service.name", ""))

    def _batch(self, records) -> Batch:
        cols = records.cached("span_columns", codec.decode_span_columns)
        rkeys, rinv = np.unique(cols.resource_key, return_inverse=True)
        services = [self._service(int(k), records.defs) for k in rkeys.tolist()]
        return Batch(span_id=cols.span_id, parent_span_id=cols.parent_span_id,
                     start=cols.start_time_unix_nano.astype(np.int64),
                     end=cols.end_time_unix_nano.astype(np.int64), name_id=cols.name_id,
                     names=cols.names, service_id=rinv.ravel(), services=services,
                     status_code=cols.status_code, kind=cols.kind, trace_id=cols.trace_id)

    def consume(self, records) -> None:
        try:
            batch = self._batch(records)
            with self._lock:
                closed = self.assembler.add(batch, self.clock())
        finally:
            records.settle()     # copied into the assembler: ring memory is free
        self._emit(closed)

    def poll(self) -> None:
        with self._lock:
            closed = self.assembler.poll(self.clock())
        self._emit(closed)

    def _emit(self, closed) -> None:
        if not closed:
            return
        lab = {"connector": self.id}
        for c in closed:
            self.m_closed.add(1, reason=c.reason, **lab)
        for forest in {id(c.forest): c.forest for c in closed}.values():
            for name, values in forest.anomalies.items():
                total = int(values.sum())
                if total:
                    self.m_anomalies.add(total, anomaly=name, **lab)
        late = self.assembler.counts["late_spans"]
        if late > self._late_seen:
            self.m_late.add(late - self._late_seen, **lab)
            self._late_seen = late
        rs = analysis_records(closed)
        try:
            self.next.consume(rs)
        except Exception as exc:
            # counted and logged; the spans themselves went their own way
            self.m_emit_failed.add(len(closed), **lab)
            log.warning("connector %s: %d trace analyses not delivered: %s", self.id,
                        len(closed), exc)

    def _run(self) -> None:
        while not self._stop.wait(float(self.config.poll_interval)):
            try:
                self.poll()
            except Exception:
                log.exception("connector %s: closing traces failed", self.id)

    def start(self, host) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.id}-poll", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            closed = self.assembler.flush(self.clock())
        self._emit(closed)


factory = Factory("trace_assembly", Kind.CONNECTOR, TraceAssemblyConfig, TraceAssembly,
                  connects=(("traces", "logs"),))
