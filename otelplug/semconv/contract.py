"""The telemetry contract for CI: sample events from a registry, and a
per-adapter, per-event report on recorded events.

Events are OTLP log records with an event name; the emitting adapter is
named by its resource (the registry's entity attributes, e.g.
``adapter.component``).  Both directions use OTLP-JSON lines (one export
request per line), which is also what the sidecar's ``file`` exporter
writes, so a CI job can check what a real run produced.

Log records without an event name are plain logs: counted, not judged.
An event is *valid* when live-check finds nothing at level ``violation`` in
it: an undefined event or attribute, a missing required attribute, a wrong
type, a value outside its constraints.  An adapter is valid when all its
events and its resource are; ``all_adapters_valid`` needs at least one
adapter.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterator

from .constraints import Constraints, attribute_constraints, check_value
from .livecheck import VIOLATION, Finding, LiveChecker
from .model import Attribute, Group, requirement_level_name
from .registry import ResolvedRegistry
from .samples import SampleError, _get, _otlp_attrs

#: a sample's timestamps: fixed, so the same registry gives the same samples
SAMPLE_TIME_NS = 1_700_000_000_000_000_000
_SEVERITY = {"debug": (5, "DEBUG"), "info": (9, "INFO"), "warning": (13, "WARN"), "warn": (13, "WARN"),
             "error": (17, "ERROR"), "critical": (21, "FATAL"), "fatal": (21, "FATAL")}
#: findings kept per event in the report (the counts are always complete)
MAX_EXAMPLES = 5


class ContractError(Exception):
    """The registry cannot produce samples (message says which attribute)."""


# ------------------------------------------------------------------ samples

def identity_attributes(registry: ResolvedRegistry) -> list[Attribute]:
    """The attributes of the registry's own entities (the adapter identity)."""
    out: dict[str, Attribute] = {}
    for group in sorted(registry.of_type("entity"), key=lambda g: g.signal_name):
        if group.local:
            for attr in group.attributes:
                out.setdefault(attr.name, attr)
    return list(out.values())


def sample_value(attr: Attribute) -> Any:
    """A value of ``attr`` that satisfies its type and constraints: its
    first such example, else one derived from the constraints."""
    c = attribute_constraints(attr)
    examples = attr.examples if isinstance(attr.examples, list) else ([] if attr.examples is None else [attr.examples])
    is_array = isinstance(attr.type, str) and attr.type.endswith("[]")
    if is_array and examples and not isinstance(examples[0], list):
        examples = [examples]
    for example in examples:
        if c is None or check_value(c, example) is None:
            return example
    if attr.is_enum:
        return attr.enum_values()[0]
    base = str(attr.type).removesuffix("[]")
    if base.startswith("template[") or base == "any":
        raise ContractError(f"attribute '{attr.name}': no sample for type {attr.type!r}")
    scalar = _derive(attr.name, base, c or Constraints())
    return [scalar] * max(1, (c.min_items if c and c.min_items else 1)) if is_array else scalar


def _derive(name: str, base: str, c: Constraints) -> Any:
    if base == "boolean":
        return True
    if base in ("int", "double"):
        low = c.minimum if c.minimum is not None else c.exclusive_minimum
        high = c.maximum if c.maximum is not None else c.exclusive_maximum
        if low is not None and high is not None:
            value = (low + high) / 2
        elif low is not None:
            value = low + 1 if c.exclusive_minimum is not None else low
        elif high is not None:
            value = high - 1 if c.exclusive_maximum is not None else high
        else:
            value = 0
        if base == "double":
            return float(value)
        for candidate in (math.floor(value), math.ceil(value), math.floor(value) + 1):
            if check_value(c, candidate) is None:
                return candidate
        raise ContractError(f"attribute '{name}': no int satisfies its constraints")
    if c.pattern is not None:
        raise ContractError(f"attribute '{name}' has a pattern but no example that matches it")
    return "x" * max(c.min_length or 1, 1)


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _kv(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in attributes.items()]


def sample_resources(registry: ResolvedRegistry) -> list[dict[str, Any]]:
    """One resource per member of the first enum identity attribute (one
    resource when there is none), the other identity attributes from their
    examples.  A conditionally required one is only added where its
    condition text names the member (``If adapter.component is gpu_kernel``)."""
    identity = identity_attributes(registry)
    enums = [a for a in identity if a.is_enum]
    if not enums:
        return [{a.name: sample_value(a) for a in identity}]
    first = enums[0]
    resources = []
    for value in first.enum_values():
        resource = {first.name: value}
        for attr in identity:
            if attr is first:
                continue
            level = attr.requirement_level
            condition = level.get("conditionally_required") if isinstance(level, dict) else None
            if condition is None or f"`{value}`" in condition or f" {value}" in f" {condition}":
                resource[attr.name] = sample_value(attr)
        resources.append(resource)
    return resources


def event_severity(group: Group) -> tuple[int, str]:
    own = ((group.get("annotations") or {}).get("otelplug") or {})
    return _SEVERITY.get(str(own.get("severity", "info")).lower(), _SEVERITY["info"])


def generate_samples(registry: ResolvedRegistry) -> Iterator[str]:
    """OTLP-JSON lines: every event of the registry with every attribute it
    defines, once per sample resource."""
    events = sorted((g for g in registry.of_type("event") if g.local), key=lambda g: g.signal_name)
    if not events:
        raise ContractError(f"registry {registry.path} defines no events")
    n = 0
    for resource in sample_resources(registry):
        for group in events:
            attributes = {a.name: sample_value(a) for a in group.attributes}
            number, text = event_severity(group)
            record = {"timeUnixNano": str(SAMPLE_TIME_NS + n), "observedTimeUnixNano": str(SAMPLE_TIME_NS + n),
                      "severityNumber": number, "severityText": text, "eventName": group.signal_name,
                      "attributes": _kv(attributes)}
            n += 1
            yield json.dumps({"resourceLogs": [{
                "resource": {"attributes": _kv(resource)},
                "scopeLogs": [{"scope": {"name": registry.name or "registry"}, "logRecords": [record]}],
            }]}, separators=(",", ":"), ensure_ascii=False)


# ------------------------------------------------------------------- report

@dataclass
class _EventResult:
    count: int = 0
    valid: int = 0
    finding_counts: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, violations: list[Finding], where: str) -> None:
        self.count += 1
        if not violations:
            self.valid += 1
        for f in violations:
            self.finding_counts[f.id] = self.finding_counts.get(f.id, 0) + 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append({"id": f.id, "message": f.message, "sample": where})

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.count == self.valid, "events": self.count, "valid_events": self.valid,
                "invalid_events": self.count - self.valid, "findings": dict(sorted(self.finding_counts.items())),
                "examples": self.examples}


def _adapter_name(resource: dict[str, Any], identity: list[Attribute]) -> str:
    parts = [str(resource[a.name]) for a in identity if a.name in resource]
    return ":".join(parts) if parts else "<no identity>"


def read_event_samples(text: str, source: str) -> Iterator[tuple[str, dict[str, Any], str | None, list[tuple[str, Any, str | None]], str]]:
    """(line location, resource attributes, event name, attributes, where)
    for every log record of OTLP-JSON lines or one OTLP-JSON document."""
    stripped = text.strip()
    if not stripped:
        return
    try:
        docs = [(1, json.loads(stripped))]
    except json.JSONDecodeError:
        docs = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    docs.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise SampleError(f"{source}:{number}: invalid JSON: {exc.msg}") from None
    for number, doc in docs:
        if not isinstance(doc, dict) or not ({"resourceLogs", "resource_logs"} & set(doc)):
            raise SampleError(f"{source}:{number}: not an OTLP-JSON logs export request (resourceLogs)")
        for rl in _get(doc, "resource_logs", []) or []:
            resource = {k: v for k, v, _t in _otlp_attrs((_get(rl, "resource") or {}).get("attributes"))}
            for sl in _get(rl, "scope_logs", []) or []:
                for index, record in enumerate(_get(sl, "log_records", []) or []):
                    attrs = _otlp_attrs(record.get("attributes"))
                    name = _get(record, "event_name") or next((v for n, v, _t in attrs if n == "event.name"), None)
                    yield f"{source}:{number}", resource, name, attrs, f"{source}:{number} record {index}"


def contract_report(registry: ResolvedRegistry, text: str, source: str) -> dict[str, Any]:
    checker = LiveChecker(registry)
    identity = identity_attributes(registry)
    required_identity = [a for a in identity if requirement_level_name(a.requirement_level) == "required"]
    adapters: dict[str, dict[str, Any]] = {}
    resource_verdicts: dict[tuple[tuple[str, str], ...], list[Finding]] = {}
    total = other = 0
    for _line, resource, name, attrs, where in read_event_samples(text, source):
        if not name:
            other += 1  # a plain log record, not an event: the contract says nothing about it
            continue
        total += 1
        adapter = adapters.setdefault(_adapter_name(resource, identity), {"events": {}, "resource_findings": []})
        key = tuple(sorted((k, repr(v)) for k, v in resource.items()))
        if key not in resource_verdicts:
            # the contract is the identity: other resource attributes
            # (service.name, telemetry.sdk.*) are the SDK's and upstream's
            found = [f for a in identity if a.name in resource
                     for f in checker.check_attribute(a.name, resource[a.name], signal_type="resource")
                     if f.level == VIOLATION]
            found += [Finding("missing_identity", VIOLATION,
                              f"resource: required identity attribute '{a.name}' is not present.",
                              {"attribute_key": a.name}, "resource") for a in required_identity
                      if a.name not in resource]
            resource_verdicts[key] = found
            for f in found:
                entry = {"id": f.id, "message": f.message, "sample": where}
                if entry not in adapter["resource_findings"] and len(adapter["resource_findings"]) < MAX_EXAMPLES:
                    adapter["resource_findings"].append(entry)
        violations = [f for f in checker.check_log(name, attrs) if f.level == VIOLATION]
        adapter["events"].setdefault(name, _EventResult()).add(violations, where)
    out_adapters = {}
    for name, data in sorted(adapters.items()):
        events = {ev: r.to_dict() for ev, r in sorted(data["events"].items())}
        valid = all(e["valid"] for e in events.values()) and not data["resource_findings"]
        out_adapters[name] = {"valid": valid, "events": events, "resource_findings": data["resource_findings"]}
    return {
        "registry": registry.name or registry.path,
        "samples": source,
        "total_events": total,
        "log_records_without_event_name": other,
        "adapters": out_adapters,
        "all_adapters_valid": bool(out_adapters) and all(a["valid"] for a in out_adapters.values()),
        "unused_events": sorted(set(checker.events) - {e for a in adapters.values() for e in a["events"]}),
    }


def report_text(report: dict[str, Any]) -> list[str]:
    lines = []
    for name, adapter in report["adapters"].items():
        events = adapter["events"]
        lines.append(f"{'ok  ' if adapter['valid'] else 'FAIL'} adapter {name}: {len(events)} event names, "
                     f"{sum(r['events'] for r in events.values())} events")
        for f in adapter["resource_findings"]:
            lines.append(f"       {f['sample']}: resource: {f['id']}: {f['message']}")
        for event, r in events.items():
            if r["valid"]:
                continue
            lines.append(f"       FAIL {event}: {r['invalid_events']} of {r['events']} invalid")
            lines += [f"            {e['sample']}: {e['id']}: {e['message']}" for e in r["examples"]]
    verdict = "all adapters valid" if report["all_adapters_valid"] else (
        "no events found" if not report["adapters"] else "contract violated")
    lines.append(f"{verdict}: {report['total_events']} events from {len(report['adapters'])} adapters")
    return lines
