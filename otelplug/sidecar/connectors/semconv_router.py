"""semconv_router: the ``semconv`` check as a connector, which can route.

A processor hands its output to the next consumer of its own pipeline only,
so sending failing items elsewhere needs a connector (as the Collector's
routing connector does).  ``semconv_router`` is the exporter of one
pipeline and the receiver of others; it runs the same checker as the
``semconv`` processor (same ``registry``, ``actions``, self-metrics - see
``otelplug/sidecar/processors/semconv.py``) and sends:

* items whose action is ``pass`` or ``annotate`` to ``pipelines``
  (default: every pipeline of the same signal it feeds that is not listed
  in ``route_pipelines`` or ``findings_pipelines``);
* items whose action is ``route`` to ``route_pipelines`` (required when a
  level's action is ``route``); they carry the annotation attributes too,
  so the receiving pipeline sees why they were routed;
* with ``emit_findings_as_logs: true``, one log record per finding at or
  above ``findings_log_min_level`` (default violation), shaped like Weaver
  live-check's ``weaver.live_check.finding`` event (body: the message;
  attributes ``weaver.finding.id|level|sample_type|signal_type|signal_name``,
  ``weaver.finding.context.<key>``, ``weaver.finding.resource_attribute.<key>``;
  severity ERROR / WARN / INFO; trace and span id of the span it is about),
  to ``findings_pipelines`` (default: every logs pipeline it feeds that is
  not listed elsewhere).  Finding logs carry no acks: losing them (a
  refusing pipeline) never holds ring data back.

Items dropped (``drop``) are settled here.  Example::

    connectors:
      semconv_router:
        registry: semconv/
        actions: {violation: route, improvement: annotate}
        route_pipelines: [traces/quarantine]
        emit_findings_as_logs: true
    service:
      pipelines:
        traces:            {receivers: [shm], processors: [batch], exporters: [semconv_router]}
        traces/ok:         {receivers: [semconv_router], exporters: [otlp]}
        traces/quarantine: {receivers: [semconv_router], exporters: [file]}
        logs/findings:     {receivers: [semconv_router], exporters: [debug]}

One checker (cache, statistics) serves every signal the connector carries.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from ..ack import hold_all, settle_all
from ..component import SIGNALS, Factory, Kind, PipelineID
from ..config.errors import ConfigError, ConfigErrors
from ..consumer import Consumer, FanOut, Refused
from ..semconvcheck.config import LEVELS, ROUTE, SemconvConfig
from ..semconvcheck.engine import Engine

log = logging.getLogger("otelplug.sidecar")


@dataclass
class SemconvRouterConfig(SemconvConfig):
    pipelines: list[str] = field(default_factory=list)
    route_pipelines: list[str] = field(default_factory=list)
    emit_findings_as_logs: bool = False
    findings_pipelines: list[str] = field(default_factory=list)
    findings_log_min_level: Literal["violation", "improvement", "information"] = "violation"

    allow_route = True

    def validate(self):
        errs = list(super().validate())
        routes = any(getattr(self.actions, lvl) == "route" for lvl in LEVELS)
        if routes and not self.route_pipelines:
            errs.append((("route_pipelines",), "required when an action is route"))
        seen = {}
        for name in ("pipelines", "route_pipelines", "findings_pipelines"):
            for i, raw in enumerate(getattr(self, name)):
                try:
                    pid = PipelineID.parse(raw)
                except ValueError as exc:
                    errs.append(((name, str(i)), str(exc)))
                    continue
                if name == "findings_pipelines" and pid.signal != "logs":
                    errs.append(((name, str(i)), f"pipeline {raw!r} is not a logs pipeline"))
                if pid in seen:
                    errs.append(((name, str(i)), f"pipeline {raw!r} is also listed in {seen[pid]}"))
                seen[pid] = name
        if self.findings_pipelines and not self.emit_findings_as_logs:
            errs.append((("findings_pipelines",), "set emit_findings_as_logs: true to use it"))
        return errs


class SemconvRouter(Consumer):
    mutates = False

    def __init__(self, settings, config: SemconvRouterConfig, next_consumer):
        self.id = str(settings.id)
        self.config = config
        self.signal = settings.signal
        # one checker per connector id, shared by its instances (one per signal)
        self.engine = settings.shared.get_or_create(
            ("semconv_router", self.id), lambda: Engine(config, settings.telemetry, self.id))
        host = settings.host
        if host is not None:
            self.default, self.route, self.findings = self._targets(settings, host)
        else:   # built alone (tests): everything not routed goes to next_consumer
            self.default, self.route, self.findings = next_consumer, None, None
        self.emit = config.emit_findings_as_logs and self.findings is not None

    def _targets(self, settings, host):
        cfg = self.config
        base = ("connectors", self.id)
        fed = [p for p in host.config.pipelines.values() if settings.id in p.receivers]
        fed_ids = {p.id for p in fed}
        errors = []

        def listed(name):
            out = []
            for i, raw in enumerate(getattr(cfg, name)):
                pid = PipelineID.parse(raw)
                if pid not in fed_ids:
                    errors.append(ConfigError(base + (name, str(i)),
                                              f'pipeline "{pid}" does not receive from "{self.id}"'))
                    continue
                out.append(pid)
            return out

        explicit, routed, findings = listed("pipelines"), listed("route_pipelines"), listed("findings_pipelines")
        others = set(explicit) | set(routed) | set(findings)
        sig = self.signal
        default = [p for p in explicit if p.signal == sig] if explicit else \
            [p.id for p in fed if p.id.signal == sig and p.id not in others]
        route = [p for p in routed if p.signal == sig]
        if cfg.emit_findings_as_logs and not findings:
            findings = [p.id for p in fed if p.id.signal == "logs" and p.id not in others
                        and not (sig == "logs" and p.id in default)]
        if not default:
            errors.append(ConfigError(base + ("pipelines",),
                                      f"no {sig} pipeline receives the items that are not routed: "
                                      f"list them in pipelines"))
        if any(getattr(cfg.actions, lvl) == "route" for lvl in LEVELS) and not route:
            errors.append(ConfigError(base + ("route_pipelines",),
                                      f"no {sig} pipeline listed for the items an action routes"))
        if errors:
            raise ConfigErrors(errors)

        def fan(ids):
            return FanOut([host.entries[p] for p in ids]) if ids else None

        return fan(default), fan(route), fan(findings)

    # -- data ---------------------------------------------------------------
    def consume(self, records) -> None:
        if len(records) == 0:
            self.default.consume(records)
            return
        outcome = self.engine.evaluate(records, want_logs=self.emit)
        actions = outcome.actions
        keep = actions < ROUTE
        routed = actions == ROUTE
        sends = []
        if keep.any():
            sends.append((outcome.records if keep.all() else outcome.select(keep), self.default))
        if routed.any() and self.route is not None:
            sends.append((outcome.records if routed.all() else outcome.select(routed), self.route))
        try:
            self._send(records, sends)
        finally:
            if outcome.logs is not None:
                try:
                    self.findings.consume(outcome.logs)
                except Refused:
                    log.debug("%s: finding logs refused downstream; dropped", self.id)

    @staticmethod
    def _send(records, sends) -> None:
        if not sends:
            records.settle()          # everything dropped on purpose
            return
        hold_all(records.acks, len(sends) - 1)
        refused = None
        for rs, consumer in sends:
            try:
                consumer.consume(rs)
            except Refused as exc:
                settle_all(rs.acks, ok=False)
                refused = exc
        if refused is not None:
            raise refused

    def stats(self) -> dict:
        return self.engine.stats_dict()

    def start(self, host) -> None:
        pass

    def shutdown(self) -> None:
        pass


factory = Factory("semconv_router", Kind.CONNECTOR, SemconvRouterConfig, SemconvRouter,
                  connects=tuple((s, s) for s in SIGNALS) + (("traces", "logs"), ("metrics", "logs")))
