"""The running sidecar: builds the component graph and runs it.

Graph, as in the Collector: one receiver instance per receiver id (shared by
every pipeline that lists it), a processor chain per pipeline, one exporter
instance per (exporter id, signal), and connectors joining an exporting
pipeline to receiving ones.  Start order is extensions, exporters,
processors, connectors, receivers; shutdown is the reverse, so data in
flight drains forward before its destination stops.
"""
from __future__ import annotations

import logging
import os
import threading
import time

import psutil

from .component import CreateSettings, Kind
from .consumer import FanOut, PipelineRouter
from .shared import SharedInstances
from .telemetry import MetricsServer, Telemetry

log = logging.getLogger("otelplug.sidecar")


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
        self._build()

    def _settings(self, kind, cid, signal=None):
        return CreateSettings(cid, kind, signal, self.telemetry, self, shared=self.shared)

    def _build(self) -> None:
        cfg = self.config
        for cid in cfg.extensions:
            cc = cfg.component(Kind.EXTENSION, cid)
            self.extensions[str(cid)] = cc.factory.create(self._settings(Kind.EXTENSION, cid), cc.config)
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
            for eid in p.exporters:
                if (Kind.CONNECTOR, eid) in cfg.components:
                    pending_connectors.append((eid, p))
                    tails.append(_Late(eid, p.id.signal, self))
                    continue
                key = (str(eid), p.id.signal)
                if key not in self.exporters:
                    cc = cfg.component(Kind.EXPORTER, eid)
                    self.exporters[key] = cc.factory.create(
                        self._settings(Kind.EXPORTER, eid, p.id.signal), cc.config)
                tails.append(self.exporters[key])
            nxt = FanOut(tails)
            for pid_ in reversed(p.processors):
                cc = cfg.component(Kind.PROCESSOR, pid_)
                proc = cc.factory.create(self._settings(Kind.PROCESSOR, pid_, p.id.signal),
                                         cc.config, nxt)
                self.processors.append(proc)
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
            self.connectors[key] = cc.factory.create(
                self._settings(Kind.CONNECTOR, eid, p.id.signal), cc.config,
                PipelineRouter({t.id: self.entries[t.id] for t in targets}))
        # receivers: one instance each, fanning out per signal
        by_receiver: dict = {}
        for p in cfg.pipelines.values():
            for rid in p.receivers:
                if (Kind.RECEIVER, rid) in cfg.components:
                    by_receiver.setdefault(rid, {}).setdefault(p.id.signal, []).append(self.entries[p.id])
        for rid, per_signal in by_receiver.items():
            cc = cfg.component(Kind.RECEIVER, rid)
            consumers = {sig: FanOut(cs) for sig, cs in per_signal.items()}
            self.receivers[str(rid)] = cc.factory.create(self._settings(Kind.RECEIVER, rid),
                                                          cc.config, consumers)

    def extension(self, name: str):
        return self.extensions.get(name)

    def start(self) -> None:
        tm = self.config.telemetry.metrics
        self._install_process_metrics()
        if tm.level != "none" and tm.address:
            self.metrics_server = MetricsServer(self.telemetry, tm.address)
            self.metrics_server.start()
        for group in (self.extensions.values(), self.exporters.values(),
                      reversed(self.processors), self.connectors.values(),
                      self.receivers.values()):
            for c in group:
                c.start(self)
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
                try:
                    c.shutdown()
                except Exception:
                    log.exception("error shutting down %r", c)
        if self.metrics_server:
            self.metrics_server.shutdown()

    def _install_process_metrics(self) -> None:
        proc = psutil.Process(os.getpid())
        cpu = self.telemetry.gauge("process_cpu_seconds", "Total CPU user and system time in seconds")
        rss = self.telemetry.gauge("process_memory_rss", "Total physical memory (resident set size)")
        up = self.telemetry.gauge("process_uptime", "Uptime of the process in seconds")
        t0 = time.monotonic()

        def refresh():
            t = proc.cpu_times()
            cpu.set(t.user + t.system)
            rss.set(proc.memory_info().rss)
            up.set(time.monotonic() - t0)

        self.telemetry.on_collect(refresh)


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
