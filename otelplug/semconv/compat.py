"""Backward-compatibility check between a baseline and a current registry.

Implements the rules of the upstream ``backwards-compatibility`` policy
(opentelemetry-weaver-packages, ``compat.rego``) with its finding ids and
context keys, so reports can be compared with Weaver's:

* attributes are never removed; stable attributes keep stability and type;
  enum members are never removed; stable members stay stable and keep
  their value;
* metrics, events, spans, entities and public attribute groups are never
  removed; stable ones stay stable; stable metrics keep unit, instrument and
  their set of required/recommended attributes; stable events and spans keep
  their stable attributes; stable entities keep their identity and
  attributes; stable spans keep their kind.

Two upstream quirks are reproduced on purpose so findings match the policy
package's expected output: a stable metric that loses its stability is
reported with id ``compatibility_metric_missing``, and a changed stable enum
value reports the *previous* value as ``current_value`` too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import location
from .model import Attribute, Group, requirement_level_name, type_name
from .registry import ResolvedRegistry
from .signals import SignalView, signal_view


@dataclass
class CompatFinding:
    id: str
    message: str
    context: dict[str, Any] = field(default_factory=dict)
    signal_type: str | None = None
    signal_name: str | None = None
    level: str = "violation"
    #: where to look: the definition in the current registry, or in the
    #: baseline for something removed (``in_baseline``)
    path: str | None = None
    line: int | None = None
    in_baseline: bool = False

    def format(self) -> str:
        """One line for people: ``file:line: level: id: message``."""
        where = " (where the baseline defined it)" if self.in_baseline else ""
        return f"{location(self.path, self.line)}: {self.level}: {self.id}: {self.message}{where}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "level": self.level, "message": self.message, "context": self.context,
                "signal_type": self.signal_type, "signal_name": self.signal_name,
                "path": self.path, "line": self.line, "in_baseline": self.in_baseline}


_SIGNAL_TABLES = {"metric": "metrics", "event": "events", "span": "spans", "entity": "entities"}


def _locate(finding: CompatFinding, base: SignalView, cur: SignalView) -> None:
    """Point a finding at the definition it is about in the current
    registry, or in the baseline when that definition is gone."""
    if finding.signal_type in _SIGNAL_TABLES:
        table, key = _SIGNAL_TABLES[finding.signal_type], finding.signal_name
    elif "attribute_group_id" in finding.context:
        table, key = "attribute_groups", finding.context["attribute_group_id"]
    else:
        table, key = "attributes", finding.context.get("attribute_key")
    new, old = cur.kind(table).get(key), base.kind(table).get(key)
    source = new if new is not None else old
    finding.path, finding.line = getattr(source, "path", None), getattr(source, "line", None)
    finding.in_baseline = new is None and old is not None


def _set_text(names: list[str]) -> str:
    return "{" + ", ".join(f'"{n}"' for n in names) + "}"


def check_compatibility(baseline: ResolvedRegistry, current: ResolvedRegistry) -> list[CompatFinding]:
    base, cur = signal_view(baseline), signal_view(current)
    findings: list[CompatFinding] = []
    findings += _attributes(base, cur)
    findings += _metrics(base, cur)
    findings += _events(base, cur)
    findings += _spans(base, cur)
    findings += _entities(base, cur)
    findings += _attribute_groups(base, cur)
    for finding in findings:
        _locate(finding, base, cur)
    return findings


def _stable(obj: Any) -> bool:
    return getattr(obj, "stability", None) == "stable"


def _names(group: Group, *, stable_only: bool = False, role: str | None = None) -> set[str]:
    return {a.name for a in group.attributes
            if (not stable_only or a.stability == "stable") and (role is None or a.role == role)}


def _attributes(base: SignalView, cur: SignalView) -> list[CompatFinding]:
    out: list[CompatFinding] = []
    for key, old in sorted(base.attributes.items()):
        new = cur.attributes.get(key)
        out += _attribute(key, old, new)
    return out


def _attribute(key: str, old: Attribute, new: Attribute | None) -> list[CompatFinding]:
    if new is None:
        return [CompatFinding("compatibility_removed_attribute",
                              f"Attribute '{key}' no longer exists in the attribute registry",
                              {"attribute_key": key})]
    out = []
    if _stable(old):
        if new.stability != "stable":
            out.append(CompatFinding("compatibility_stable_attribute_now_unstable",
                                     f"Attribute '{key}' was stable, but has new stability marker",
                                     {"attribute_key": key}))
        if type_name(old.type) != type_name(new.type):
            out.append(CompatFinding(
                "compatibility_stable_attribute_changed_type",
                f"Attribute '{key}' was {type_name(old.type)}, but has new type '{type_name(new.type)}'",
                {"attribute_key": key, "attribute_type": type_name(new.type),
                 "previous_attribute_type": type_name(old.type)}))
    if old.is_enum and new.is_enum:
        out += _enum_members(key, old.type["members"], new.type["members"])
    return out


def _enum_members(key: str, old_members: list[dict], new_members: list[dict]) -> list[CompatFinding]:
    out = []
    current = {m["id"]: m for m in new_members}
    for member in old_members:
        mid = member["id"]
        now = current.get(mid)
        if now is None:
            out.append(CompatFinding("compatibility_stable_enum_member_missing",
                                     f"Enum '{key}' had member '{mid}', but is no longer defined",
                                     {"attribute_key": key, "member_id": mid}))
            continue
        if member.get("stability") != "stable":
            continue
        if now.get("stability") != "stable":
            out.append(CompatFinding("compatibility_stable_enum_member_changed_from_stable",
                                     f"Enum '{key}' had stable member '{mid}', but is no longer stable",
                                     {"attribute_key": key, "enum_member_id": mid}))
        if now.get("value") != member.get("value"):
            out.append(CompatFinding(
                "compatibility_stable_enum_member_changed_from_stable",
                f"Enum '{key}' had stable value '{member.get('value')}', but is now '{now.get('value')}'",
                # upstream reports the previous value under both keys
                {"attribute_key": key, "current_value": member.get("value"),
                 "previous_value": member.get("value")}))
    return out


def _signal_finding(kind: str, name: str, fid: str, message: str, context: dict | None = None) -> CompatFinding:
    return CompatFinding(fid, message, context or {}, signal_type=kind, signal_name=name)


_NON_OPTIONAL = ("required", "recommended")


def _metrics(base: SignalView, cur: SignalView) -> list[CompatFinding]:
    out = []
    for name, old in sorted(base.metrics.items()):
        new = cur.metrics.get(name)
        f = lambda fid, msg, ctx=None: _signal_finding("metric", name, fid, msg, ctx)  # noqa: E731
        if new is None:
            out.append(f("compatibility_metric_missing", f"Metric '{name}' no longer exists in semantic conventions"))
            continue
        if not _stable(old):
            continue
        if new.stability != "stable":
            out.append(f("compatibility_metric_missing", f"Metric '{name}' cannot change from stable"))
        if old.get("unit") != new.get("unit"):
            out.append(f("compatibility_metric_changed_unit",
                         f"Metric '{name}' cannot change unit (was '{old.get('unit')}', now: '{new.get('unit')}')",
                         {"current_unit": new.get("unit"), "previous_unit": old.get("unit")}))
        if old.get("instrument") != new.get("instrument"):
            out.append(f("compatibility_metric_changed_instrument",
                         f"Metric '{name}' cannot change instrument (was '{old.get('instrument')}', "
                         f"now: '{new.get('instrument')}')",
                         {"current_instrument": new.get("instrument"), "previous_instrument": old.get("instrument")}))
        before = {a.name for a in old.attributes}
        added = sorted(a.name for a in new.attributes
                       if a.name not in before and requirement_level_name(a.requirement_level) in _NON_OPTIONAL)
        if added:
            out.append(f("compatibility_metric_added_attributes",
                         f"Metric '{name}' cannot change required/recommended attributes (added '{_set_text(added)}')",
                         {"added_attributes": added}))
    return out


def _events(base: SignalView, cur: SignalView) -> list[CompatFinding]:
    out = []
    for name, old in sorted(base.events.items()):
        new = cur.events.get(name)
        f = lambda fid, msg, ctx=None: _signal_finding("event", name, fid, msg, ctx)  # noqa: E731
        if new is None:
            out.append(f("compatibility_event_removed", f"Event '{name}' no longer exists in semantic conventions"))
            continue
        if not _stable(old):
            continue
        if new.stability != "stable":
            out.append(f("compatibility_event_changed_stability", f"Event '{name}' cannot change from stable"))
        missing = sorted(_names(old, stable_only=True) - _names(new))
        if missing:
            out.append(f("compatibility_event_dropped_attributes",
                         f"Event '{name}' cannot remove stable attributes (missing '{_set_text(missing)}')",
                         {"missing_attributes": missing}))
    return out


def _spans(base: SignalView, cur: SignalView) -> list[CompatFinding]:
    out = []
    for name, old in sorted(base.spans.items()):
        new = cur.spans.get(name)
        f = lambda fid, msg, ctx=None: _signal_finding("span", name, fid, msg, ctx)  # noqa: E731
        if new is None:
            out.append(f("compatibility_span_missing", f"Span '{name}' no longer exists in semantic conventions"))
            continue
        if not _stable(old):
            continue
        if new.stability != "stable":
            out.append(f("compatibility_span_changed_stability", f"Span '{name}' cannot change from stable"))
        if old.get("span_kind") != new.get("span_kind"):
            out.append(f("compatibility_span_changed_kind",
                         f"Span '{name}' cannot change kind (was '{old.get('span_kind')}', now '{new.get('span_kind')}').",
                         {"current": new.get("span_kind"), "previous": old.get("span_kind")}))
        missing = sorted(_names(old, stable_only=True) - _names(new))
        if missing:
            out.append(f("compatibility_span_dropped_attributes",
                         f"Span '{name}' cannot remove stable attributes (missing '{_set_text(missing)}')",
                         {"missing_attributes": missing}))
    return out


def _entities(base: SignalView, cur: SignalView) -> list[CompatFinding]:
    out = []
    for name, old in sorted(base.entities.items()):
        new = cur.entities.get(name)
        f = lambda fid, msg, ctx=None: _signal_finding("entity", name, fid, msg, ctx)  # noqa: E731
        if new is None:
            out.append(f("compatibility_entity_missing", f"Entity '{name}' no longer exists in semantic conventions"))
            continue
        if not _stable(old):
            continue
        if new.stability != "stable":
            out.append(f("compatibility_entity_changed_stability", f"Entity '{name}' cannot change from stable"))
        old_id, new_id = _names(old, role="identifying"), _names(new, role="identifying")
        added = sorted(new_id - old_id)
        if added:
            out.append(f("compatibility_entity_changed_identity",
                         f"Entity '{name}' cannot change identity. (Found new attributes '{_set_text(added)}')",
                         {"added_attributes": added}))
        missing_id = sorted(old_id - _names(new))
        if missing_id:
            out.append(f("compatibility_entity_missing_attribute",
                         f"Entity '{name}' cannot remove attributes from identity (missing '{_set_text(missing_id)}')",
                         {"identity_missing_attributes": missing_id}))
        missing_desc = sorted(_names(old) - old_id - _names(new))
        if missing_desc:
            out.append(f("compatibility_entity_missing_attribute",
                         f"Entity '{name}' cannot remove attributes from description (missing '{_set_text(missing_desc)}')",
                         {"description_missing_attributes": missing_desc}))
    return out


def _attribute_groups(base: SignalView, cur: SignalView) -> list[CompatFinding]:
    out = []
    for gid, old in sorted(base.attribute_groups.items()):
        new = cur.attribute_groups.get(gid)
        ctx = {"attribute_group_id": gid}
        if new is None:
            out.append(CompatFinding("compatibility_attribute_group_removed",
                                     f"Attribute group '{gid}' no longer exists in semantic conventions", ctx))
            continue
        if not _stable(old):
            continue
        if new.stability != "stable":
            out.append(CompatFinding("compatibility_attribute_group_changed_stability",
                                     f"Attribute group '{gid}' cannot change from stable", dict(ctx)))
        missing = sorted(_names(old) - _names(new))
        if missing:
            out.append(CompatFinding("compatibility_attribute_group_dropped_attributes",
                                     f"Attribute group '{gid}' cannot remove attributes (missing '{_set_text(missing)}')",
                                     {**ctx, "missing_attributes": missing}))
        before = _names(old)
        added = sorted(a.name for a in new.attributes
                       if a.name not in before and requirement_level_name(a.requirement_level) != "opt_in")
        if added:
            out.append(CompatFinding("compatibility_attribute_group_added_attributes",
                                     f"Attribute group '{gid}' cannot add required/recommended attributes "
                                     f"(added '{_set_text(added)}')", {"added_attributes": added, **ctx}))
    return out
