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
from ..consumer import Consumer, PipelineRouter, Refused
from ..semconvcheck.config import LEVELS, ROUTE, SemconvConfig
from ..semconvcheck.engine import Engine

log = logging.getLogger("otelplug.sidecar")


@dataclass
class SemconvRouterConfig(SemconvConfig):
    """``pipelines``: where items not routed go; default: every pipeline of
    the same signal it feeds that is not listed below.

    ``route_pipelines``: where items whose action is route go.

    ``emit_findings_as_logs``: send one log record per finding, shaped as
    Weaver live-check's finding event.

    ``findings_pipelines``: logs pipelines for the finding logs; default:
    every logs pipeline it feeds that is not listed elsewhere.

    ``findings_log_min_level``: the lowest finding level written as a log.
    """
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


def _listed(cfg, name: str) -> list:
    out = []
    for raw in getattr(cfg, name):
        try:
            out.append(PipelineID.parse(raw))
        except ValueError:
            pass      # reported by SemconvRouterConfig.validate
    return out


def select_pipelines(cfg: SemconvRouterConfig, signal: str, available: list) -> tuple:
    """(pipelines for items not routed, for routed items, for finding logs)
    of the instance exporting ``signal``, among the pipelines ``available``
    to it (those receiving from the connector)."""
    avail = set(available)
    explicit, routed, findings = (
        [p for p in _listed(cfg, name) if p in avail]
        for name in ("pipelines", "route_pipelines", "findings_pipelines"))
    others = set(explicit) | set(routed) | set(findings)
    default = [p for p in explicit if p.signal == signal] if explicit else \
        [p for p in available if p.signal == signal and p not in others]
    route = [p for p in routed if p.signal == signal]
    if cfg.emit_findings_as_logs and not findings:
        findings = [p for p in available if p.signal == "logs" and p not in others
                    and not (signal == "logs" and p in default)]
    return default, route, findings


def validate_pipelines(cfg: SemconvRouterConfig, cid, exporting, receiving) -> list:
    """Every listed pipeline receives from this connector, and each signal
    it exports has somewhere to send what is not routed (and what is)."""
    errs = []
    fed = [p.id for p in receiving]
    for name in ("pipelines", "route_pipelines", "findings_pipelines"):
        for i, raw in enumerate(getattr(cfg, name)):
            try:
                pid = PipelineID.parse(raw)
            except ValueError:
                continue
            if pid not in fed:
                errs.append(((name, str(i)), f'pipeline "{pid}" does not receive from "{cid}"'))
    routes = any(getattr(cfg.actions, lvl) == "route" for lvl in LEVELS)
    for signal in dict.fromkeys(p.id.signal for p in exporting):
        default, route, _ = select_pipelines(cfg, signal, fed)
        if not default:
            errs.append((("pipelines",), f"no {signal} pipeline receives the items that are not "
                                         f"routed: list them in pipelines"))
        if routes and not route:
            errs.append((("route_pipelines",),
                         f"no {signal} pipeline listed for the items an action routes"))
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
        if isinstance(next_consumer, PipelineRouter):
            default, route, findings = select_pipelines(config, self.signal,
                                                        next_consumer.pipeline_ids())
            self.default, self.route, self.findings = (
                next_consumer.consumer(default), next_consumer.consumer(route),
                next_consumer.consumer(findings))
        else:   # built alone (tests): everything not routed goes to next_consumer
            self.default, self.route, self.findings = next_consumer, None, None
        self.emit = config.emit_findings_as_logs and self.findings is not None

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
                  connects=tuple((s, s) for s in SIGNALS) + (("traces", "logs"), ("metrics", "logs")),
                  validate_pipelines=validate_pipelines)
