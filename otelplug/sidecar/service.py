"""The running sidecar: builds the component graph and runs it.

Graph, as in the Collector: one receiver instance per receiver id (shared by
every pipeline that lists it), a processor chain per pipeline, one exporter
instance per (exporter id, signal), and connectors joining an exporting
pipeline to receiving ones.  Start order is extensions, exporters,
processors, connectors, receivers; shutdown is the reverse, so data in
flight drains forward before its destination stops.

Components may declare ``claims()``: what they hold exclusively while
running (``tcp host:port`` listeners, ``shm channel X``, ``directory D``,
``file F``).  A reload (reload.py) uses them to start the new graph next to
the old one except where both want the same thing.
"""
from __future__ import annotations

import logging
import os
import threading
import time

import psutil

from .component import CreateSettings, Kind
from .config import ConfigErrors
from .consumer import FanOut, PipelineRouter
from .memory import HELD
from .shared import SharedInstances
from .telemetry import MetricsServer, Telemetry
from . import watchdog

log = logging.getLogger("otelplug.sidecar")


class StartError(RuntimeError):
    """A component could not start; the message names it."""


class Service:
    def __init__(self, config, telemetry: Telemetry | None = None):
        self.config = config
        self.telemetry = telemetry or Telemetry()
        self.extensions: dict[str, object] = {}
        self.exporters: dict[tuple, object] = {}
        self.processors: list[object] = []
        self.connectors: dict[tuple, object] = {}
        self.receivers: dict[str, object] = {}
        self.entries: dict = {}      # pipeline id -> first consumer
        self.shared = SharedInstances()
        self.metrics_server = None
        self._started = False
        self.failure: str | None = None   # set when a component thread died (watchdog)
        self._labels: dict[int, str] = {}          # id(component) -> "receivers::otlp"
        self._running: set[int] = set()            # ids of started components
        # what feeds what, for reload's start order: pipeline -> its
        # processors/exporters, connector -> pipelines it feeds, receiver -> pipelines
        self._pipeline_parts: dict = {}
        self._feeds: dict[int, list] = {}
        # components register scrape callbacks; a reload shares the registry,
        # so this graph's callbacks are removed with it (else every reload
        # would keep the whole old graph alive and refreshing)
        self._scoped_telemetry = _ScopedTelemetry(self.telemetry)
        self._build()

    def _settings(self, kind, cid, signal=None):
        return CreateSettings(cid, kind, signal, self._scoped_telemetry, self, shared=self.shared)

    def _build(self) -> None:
        cfg = self.config
        for cid in cfg.extensions:
            self.extensions[str(cid)] = self._create(Kind.EXTENSION, cid, None)
        # connectors used as receivers: (connector id, signal) -> pipelines fed
        conn_targets: dict = {}
        for p in cfg.pipelines.values():
            for rid in p.receivers:
                if (Kind.CONNECTOR, rid) in cfg.components:
                    conn_targets.setdefault(rid, []).append(p)
        # pipelines, built from their exporters backwards
        pending_connectors = []
        for p in cfg.pipelines.values():
            tails = []
            parts = self._pipeline_parts[p.id] = []
            for eid in p.exporters:
                if (Kind.CONNECTOR, eid) in cfg.components:
                    pending_connectors.append((eid, p))
                    tails.append(_Late(eid, p.id.signal, self))
                    parts.append((str(eid), p.id.signal))      # resolved in depends_on_any
                    continue
                key = (str(eid), p.id.signal)
                if key not in self.exporters:
                    self.exporters[key] = self._create(Kind.EXPORTER, eid, p.id.signal)
                tails.append(self.exporters[key])
                parts.append(self.exporters[key])
            nxt = FanOut(tails)
            for pid_ in reversed(p.processors):
                proc = self._create(Kind.PROCESSOR, pid_, p.id.signal, nxt)
                self.processors.append(proc)
                parts.append(proc)
                nxt = proc
            self.entries[p.id] = nxt
        # a connector: one instance per (id, exporting signal), feeding the
        # pipelines that list it as a receiver with a signal it can produce
        for eid, p in pending_connectors:
            key = (str(eid), p.id.signal)
            if key in self.connectors:
                continue
            cc = cfg.component(Kind.CONNECTOR, eid)
            targets = [t for t in conn_targets.get(eid, [])
                       if (p.id.signal, t.id.signal) in cc.factory.connects]
            self.connectors[key] = self._create(
                Kind.CONNECTOR, eid, p.id.signal,
                PipelineRouter({t.id: self.entries[t.id] for t in targets}))
            self._feeds[id(self.connectors[key])] = [t.id for t in targets]
        # receivers: one instance each, fanning out per signal
        by_receiver: dict = {}
        for p in cfg.pipelines.values():
            for rid in p.receivers:
                if (Kind.RECEIVER, rid) in cfg.components:
                    by_receiver.setdefault(rid, {}).setdefault(p.id.signal, []).append(self.entries[p.id])
        for rid, per_signal in by_receiver.items():
            consumers = {sig: FanOut(cs) for sig, cs in per_signal.items()}
            self.receivers[str(rid)] = self._create(Kind.RECEIVER, rid, None, consumers)
            self._feeds[id(self.receivers[str(rid)])] = [
                p.id for p in cfg.pipelines.values() if rid in p.receivers]
        self._check_listeners()

    def _check_listeners(self) -> None:
        """Two listeners on one address would fail at start, the second
        one only after the first is up: say so before anything starts."""
        first: dict[str, str] = {}
        for res, label in self._claim_list():
            if not res.startswith("tcp ") or res.endswith(":0"):
                continue
            if res in first:
                raise StartError(f"{label}: cannot listen on {res[4:]}: {first[res]} listens there too")
            first[res] = label

    def _create(self, kind: Kind, cid, signal, *consumer):
        """Construct one component; a failure names it (a reload keeps the
        running graph and reports this)."""
        cc = self.config.component(kind, cid)
        label = f"{kind.value}::{cid}"
        try:
            component = cc.factory.create(self._settings(kind, cid, signal), cc.config, *consumer)
        except ConfigErrors:
            raise               # checks that need the graph: they name their config path
        except Exception as exc:
            raise StartError(f"{label}: cannot create: {type(exc).__name__}: {exc}") from exc
        self._labels[id(component)] = label
        return component

    def label(self, component) -> str:
        return self._labels.get(id(component), repr(component))

    def extension(self, name: str):
        return self.extensions.get(name)

    def components(self) -> list:
        """Every component, in start order."""
        return [*self.extensions.values(), *self.exporters.values(), *reversed(self.processors),
                *self.connectors.values(), *self.receivers.values()]

    # -- what the graph holds -------------------------------------------------
    def metrics_address(self) -> str | None:
        tm = self.config.telemetry.metrics
        return tm.address if tm.level != "none" and tm.address else None

    def _claim_list(self) -> list[tuple[str, str]]:
        out = []
        if self.metrics_address():
            out.append((f"tcp {self.metrics_address()}", "service::telemetry::metrics"))
        for c in self.components():
            out += [(res, self.label(c)) for res in (c.claims() if hasattr(c, "claims") else ())]
        return out

    def claiming(self, resources) -> set:
        """Ids of the components (every instance) wanting any of ``resources``."""
        return {id(c) for c in self.components()
                if hasattr(c, "claims") and set(c.claims()) & set(resources)}

    def claims(self) -> dict[str, str]:
        """Exclusive resources -> the label of the component wanting them
        (port 0 is any free port: never shared, so not a claim)."""
        return {res: label for res, label in self._claim_list() if not res.endswith(":0")}

    def depends_on_any(self, blocked: set) -> set:
        """``blocked`` (component ids) plus every component that cannot run
        before them: an exporter whose queue lives in a blocked storage
        extension, and every pipeline part and receiver upstream of a
        blocked one (through connectors), so no data is handed to a
        component that has not started."""
        out = set(blocked)
        ext_ids = {name: id(e) for name, e in self.extensions.items()}
        for key, exp in self.exporters.items():
            storage = getattr(getattr(exp, "config", None), "sending_queue", None)
            if ext_ids.get(getattr(storage, "storage", None)) in out:
                out.add(id(exp))
        changed = True
        while changed:       # a blocked pipeline blocks what feeds it, up through connectors
            changed = False
            for pid, parts in self._pipeline_parts.items():
                ids = {id(self.connectors.get(x)) if isinstance(x, tuple) else id(x) for x in parts}
                if not ids & out:
                    continue
                for comp_id, fed in self._feeds.items():
                    if pid in fed and comp_id not in out:
                        out.add(comp_id)
                        changed = True
        return out

    # -- lifecycle --------------------------------------------------------------
    def take_metrics_server(self, other: "Service") -> None:
        """Serve self-metrics on ``other``'s running server (same address,
        same registry): a reload does not even close the socket."""
        self.metrics_server, other.metrics_server = other.metrics_server, None

    def start(self, defer: set = frozenset()) -> None:
        """Start every component not started yet, except those in
        ``defer`` (component ids); raises StartError naming the component
        that failed (those already started stay running: call shutdown)."""
        self._install_process_metrics()
        watchdog.watch(self._component_died)
        addr = self.metrics_address()
        if addr and self.metrics_server is None and "metrics" not in defer:
            try:
                self.metrics_server = MetricsServer(self.telemetry, addr)
            except OSError as exc:
                raise StartError(f"service::telemetry::metrics: cannot start: {exc}") from None
            self.metrics_server.start()
        for c in self.components():
            if id(c) in self._running or id(c) in defer:
                continue
            # counted as running before start: one that fails half way (a
            # channel lock taken, one of two ports bound) is shut down too,
            # so a rollback finds everything released
            self._running.add(id(c))
            try:
                c.start(self)
            except Exception as exc:
                label = self.label(c)
                msg = str(exc) if str(exc).startswith(label) else f"{label}: cannot start: {exc}"
                raise StartError(msg) from exc
        if defer:
            return
        self._started = True
        for ext in self.extensions.values():
            if hasattr(ext, "ready"):
                ext.ready(True)

    def shutdown(self) -> None:
        for ext in self.extensions.values():
            if hasattr(ext, "ready"):
                ext.ready(False)
        for group in (self.receivers.values(), self.connectors.values(), self.processors,
                      self.exporters.values(), self.extensions.values()):
            for c in group:
                if id(c) not in self._running:
                    continue
                self._running.discard(id(c))
                try:
                    c.shutdown()
                except Exception:
                    log.exception("%s: error shutting down", self.label(c))
        if self.metrics_server:
            self.metrics_server.shutdown()
            self.metrics_server = None
        self._scoped_telemetry.close()
        watchdog.unwatch(self._component_died)

    def _component_died(self, reason: str) -> None:
        # the watchdog's hook: unhealthy at once; `otelplug run` exits on it
        self.failure = reason
        for ext in self.extensions.values():
            if hasattr(ext, "failed"):
                ext.failed(reason)

    def describe(self) -> list[str]:
        """What this graph does, for the log at start and after a reload."""
        cfg = self.config
        lines = []
        for p in cfg.pipelines.values():
            procs = f" -> {', '.join(map(str, p.processors))}" if p.processors else ""
            lines.append(f"pipeline {p.id}: {', '.join(map(str, p.receivers))}{procs} -> "
                         f"{', '.join(map(str, p.exporters))}")
        for res, label in self._claim_list():
            kind, _, what = res.partition(" ")
            if kind == "tcp":
                if label == "service::telemetry::metrics" and self.metrics_server:
                    what = self.metrics_server.address          # the real port when 0 was asked
                lines.append(f"endpoint {what} ({label})")
            elif res.startswith("shm channel "):
                lines.append(f"{res} ({label})")
        return lines

    def _install_process_metrics(self) -> None:
        if self.telemetry.get("process_uptime") is not None:
            return      # a reloaded graph shares the process's registry: installed once
        proc = psutil.Process(os.getpid())
        cpu = self.telemetry.gauge("process_cpu_seconds", "Total CPU user and system time in seconds")
        rss = self.telemetry.gauge("process_memory_rss", "Total physical memory (resident set size)")
        up = self.telemetry.gauge("process_uptime", "Uptime of the process in seconds")
        # which implementation runs the hot path: "python" in production
        # means the compiled extension is missing (otelplug.implementation)
        from otelplug import __version__, implementation
        self.telemetry.gauge("build_info", "otelplug version and the implementation of its hot path",
                             ("version", "implementation")).set(
            1, version=__version__, implementation=implementation.SELECTED.name)
        t0 = time.monotonic()

        def refresh():
            t = proc.cpu_times()
            cpu.set(t.user + t.system)
            rss.set(proc.memory_info().rss)
            up.set(time.monotonic() - t0)

        self.telemetry.on_collect(refresh)
        HELD.install_metrics(self.telemetry)


class _ScopedTelemetry:
    """The shared Telemetry, remembering the scrape callbacks added through it."""

    def __init__(self, telemetry: Telemetry):
        self._telemetry = telemetry
        self._callbacks: list = []

    def on_collect(self, fn) -> None:
        self._callbacks.append(fn)
        self._telemetry.on_collect(fn)

    def close(self) -> None:
        for fn in self._callbacks:
            self._telemetry.off_collect(fn)
        self._callbacks.clear()

    def __getattr__(self, name):
        return getattr(self._telemetry, name)


class _Late:
    """A connector used as an exporter, resolved once connectors exist."""

    mutates = False

    def __init__(self, cid, signal, service):
        self.key = (str(cid), signal)
        self.service = service

    def consume(self, records) -> None:
        self.service.connectors[self.key].consume(records)


def run_until_signalled(service: Service, stop: threading.Event) -> None:
    service.start()
    try:
        while not stop.wait(0.2):
            pass
    finally:
        service.shutdown()
