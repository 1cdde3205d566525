"""The whole sidecar config: component sections plus ``service``, and the
graph rules the Collector enforces between them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..component import SIGNALS, ComponentID, Kind, PipelineID
from .decode import decode, did_you_mean, unknown_key
from .errors import ConfigErrors, ErrorList
from .graph import find_cycles
from .yaml_source import load_file, load_text

TOP_LEVEL = ("receivers", "processors", "exporters", "connectors", "extensions", "service")


@dataclass
class PipelineSection:
    receivers: list[str] = field(default_factory=list)
    processors: list[str] = field(default_factory=list)
    exporters: list[str] = field(default_factory=list)


@dataclass
class TelemetryMetrics:
    level: Literal["none", "basic", "normal", "detailed"] = "normal"
    address: str = "127.0.0.1:8888"


@dataclass
class TelemetryLogs:
    level: Literal["debug", "info", "warn", "error"] = "info"


@dataclass
class TelemetrySection:
    """``service.telemetry``: the sidecar's own metrics and logs (the
    metrics themselves are ``otelplug.sidecar.telemetry.Telemetry``)."""
    metrics: TelemetryMetrics = field(default_factory=TelemetryMetrics)
    logs: TelemetryLogs = field(default_factory=TelemetryLogs)


@dataclass
class ServiceSection:
    extensions: list[str] = field(default_factory=list)
    pipelines: dict[str, PipelineSection] = field(default_factory=dict)
    telemetry: TelemetrySection = field(default_factory=TelemetrySection)


@dataclass
class ComponentConfig:
    id: ComponentID
    kind: Kind
    factory: object
    config: object


@dataclass
class Pipeline:
    id: PipelineID
    receivers: list[ComponentID]
    processors: list[ComponentID]
    exporters: list[ComponentID]


@dataclass
class Config:
    components: dict[tuple[Kind, ComponentID], ComponentConfig]
    pipelines: dict[PipelineID, Pipeline]
    extensions: list[ComponentID]
    telemetry: TelemetrySection
    warnings: list[str] = field(default_factory=list)
    source: str = "<config>"

    def component(self, kind: Kind, cid: ComponentID) -> ComponentConfig:
        return self.components[(kind, cid)]


def _decode_components(kind: Kind, section, registry, errs: ErrorList, out) -> None:
    if section is None:
        return
    if not isinstance(section, dict):
        errs.add((kind.value,), f"expected a mapping of {kind.singular} ids to configs")
        return
    for raw_id, raw_cfg in section.items():
        path = (kind.value, str(raw_id))
        try:
            cid = ComponentID.parse(raw_id)
        except ValueError as exc:
            errs.add(path, str(exc))
            continue
        factory = registry.get(kind, cid.type)
        if factory is None:
            why = registry.unavailable.get((kind, cid.type))
            if why:
                errs.add(path, f"{kind.singular} type {cid.type!r} is not available: {why}")
            else:
                errs.add(path, f"unknown type {cid.type!r} for id {str(cid)!r}"
                               f"{did_you_mean(cid.type, registry.types(kind))} "
                               f"(valid values: {', '.join(registry.types(kind))})")
            continue
        cfg = decode(factory.config, raw_cfg, path, errs)
        out[(kind, cid)] = ComponentConfig(cid, kind, factory, cfg)


def _check_pipelines(service: ServiceSection, comps, errs: ErrorList):
    pipelines: dict[PipelineID, Pipeline] = {}
    base = ("service", "pipelines")
    for raw_pid, sec in service.pipelines.items():
        path = base + (raw_pid,)
        try:
            pid = PipelineID.parse(raw_pid)
        except ValueError as exc:
            errs.add(path, str(exc))
            continue
        resolved = {}
        for role, kind in (("receivers", None), ("processors", Kind.PROCESSOR),
                           ("exporters", None)):
            ids = []
            seen = set()
            for i, raw in enumerate(getattr(sec, role)):
                item = path + (role, str(i))      # errors point at the list item's line
                try:
                    cid = ComponentID.parse(raw)
                except ValueError as exc:
                    errs.add(path, str(exc), at=item)
                    continue
                singular = role[:-1]
                kinds = [kind] if kind else [Kind.RECEIVER if role == "receivers" else Kind.EXPORTER,
                                            Kind.CONNECTOR]
                found = next((k for k in kinds if (k, cid) in comps), None)
                if found is None:
                    configured = [str(c) for k, c in comps if k in kinds]
                    errs.add(path, f'references {singular} "{cid}" which is not configured'
                                   f"{did_you_mean(cid, configured)}", at=item)
                    continue
                if cid in seen:
                    errs.add(path, f'references {singular} "{cid}" multiple times', at=item)
                    continue
                seen.add(cid)
                factory = comps[(found, cid)].factory
                if found is not Kind.CONNECTOR and pid.signal not in factory.signals:
                    errs.add(path, f'{singular} "{cid}" does not support {pid.signal}', at=item)
                ids.append(cid)
            resolved[role] = ids
        if not sec.receivers:
            errs.add(path, "must have at least one receiver")
        if not sec.exporters:
            errs.add(path, "must have at least one exporter")
        pipelines[pid] = Pipeline(pid, resolved["receivers"], resolved["processors"],
                                  resolved["exporters"])
    if not service.pipelines:
        errs.add(("service", "pipelines"), "at least one pipeline must be configured")
    # connectors: an exporter in one pipeline, a receiver in another, with a
    # signal pair the connector supports
    for (kind, cid), cc in comps.items():
        if kind is not Kind.CONNECTOR:
            continue
        as_exp = [p for p in pipelines.values() if cid in p.exporters]
        as_rcv = [p for p in pipelines.values() if cid in p.receivers]
        if not as_exp or not as_rcv:
            if as_exp or as_rcv:
                errs.add(("connectors", str(cid)),
                         "a connector must be used as both receiver and exporter")
            continue
        for e in as_exp:
            for r in as_rcv:
                if (e.id.signal, r.id.signal) not in cc.factory.connects:
                    errs.add(("connectors", str(cid)),
                             f"cannot connect {e.id.signal} (pipeline {e.id}) to "
                             f"{r.id.signal} (pipeline {r.id})")
        check = cc.factory.validate_pipelines
        if check is not None and not errs.has_errors_under(("connectors", str(cid))):
            for path, message in check(cc.config, cid, as_exp, as_rcv):
                errs.add(("connectors", str(cid)) + tuple(path), message)
    # data a connector hands back to a pipeline upstream of it would loop
    # forever (the Collector refuses such graphs too)
    for cycle in find_cycles(_connector_edges(comps, pipelines)):
        hops = "".join(f"{p} -[{c}]-> " for p, c in cycle) + str(cycle[0][0])
        errs.add(base, f"connectors form a cycle, data would loop forever: {hops}",
                 at=base + (str(cycle[0][0]),))
    return pipelines


def _connector_edges(comps, pipelines) -> dict:
    """pipeline id -> [(connector id, pipeline id it feeds)]."""
    edges: dict = {}
    for (kind, cid), cc in comps.items():
        if kind is not Kind.CONNECTOR:
            continue
        for e in pipelines.values():
            if cid not in e.exporters:
                continue
            for r in pipelines.values():
                if cid in r.receivers and (e.id.signal, r.id.signal) in cc.factory.connects:
                    edges.setdefault(e.id, []).append((cid, r.id))
    return edges


def build_config(data: dict, registry, lines=None, filename="<config>", warnings=(),
                 unset=None) -> Config:
    """Validate parsed config data; raises ConfigErrors with every problem."""
    errs = ErrorList(lines, filename, unset)
    for key in sorted(str(k) for k in data if k not in TOP_LEVEL):
        errs.add((), unknown_key(key, TOP_LEVEL), at=(key,))
    comps: dict = {}
    for kind in Kind:
        _decode_components(kind, data.get(kind.value), registry, errs, comps)
    service = decode(ServiceSection, data.get("service"), ("service",), errs) or ServiceSection()
    pipelines = _check_pipelines(service, comps, errs)
    extensions = []
    for i, raw in enumerate(service.extensions):
        item = ("service", "extensions", str(i))
        try:
            cid = ComponentID.parse(raw)
        except ValueError as exc:
            errs.add(("service", "extensions"), str(exc), at=item)
            continue
        if (Kind.EXTENSION, cid) not in comps:
            configured = [str(c) for k, c in comps if k is Kind.EXTENSION]
            errs.add(("service", "extensions"), f'references extension "{cid}" which is not '
                     f"configured{did_you_mean(cid, configured)}", at=item)
        else:
            extensions.append(cid)
    errs.raise_if_any()
    return Config(comps, pipelines, extensions, service.telemetry, list(warnings), filename)


def load(path: str | None, registry, environ=None, text: str | None = None) -> Config:
    """Load and validate a config file (or text)."""
    src = load_text(text, path or "<config>", environ) if text is not None else load_file(path, environ)
    return build_config(src.data, registry, src.lines, path or "<config>", src.warnings, src.unset)


__all__ = ["Config", "ConfigErrors", "Pipeline", "SIGNALS", "build_config", "load"]
