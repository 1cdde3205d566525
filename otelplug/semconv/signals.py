"""A registry seen as named signals, the view compat and diff work on.

Compatibility and diffs are about what instrumentation emits: registry
attributes, metrics (by metric name), events and entities (by name), spans
(by span type) and public attribute groups (v2).  Refinements and internal
groups are specialisations, not separately emitted signals, so they are left
out.  Only the registry's own groups count, not imported dependency ones.
"""
from __future__ import annotations

from dataclasses import dataclass

from .model import Attribute, Group
from .registry import ResolvedRegistry

KINDS = ("attributes", "metrics", "events", "spans", "entities", "attribute_groups")


@dataclass
class SignalView:
    attributes: dict[str, Attribute]
    metrics: dict[str, Group]
    events: dict[str, Group]
    spans: dict[str, Group]
    entities: dict[str, Group]
    attribute_groups: dict[str, Group]

    def kind(self, name: str) -> dict:
        return getattr(self, name)


def signal_view(registry: ResolvedRegistry) -> SignalView:
    local = [g for g in registry.groups if g.local and g.refines is None]
    attributes = registry.local_attributes or registry.attributes

    def by(gtype: str, key) -> dict[str, Group]:
        out: dict[str, Group] = {}
        for g in local:
            if g.type == gtype:
                out.setdefault(key(g), g)
        return out

    return SignalView(
        attributes=dict(attributes),
        metrics=by("metric", lambda g: g.fields.get("metric_name") or g.id),
        events=by("event", lambda g: g.signal_name),
        spans=by("span", lambda g: g.span_type),
        entities=by("entity", lambda g: g.signal_name),
        attribute_groups={g.id: g for g in local if g.type == "attribute_group" and g.visibility == "public"},
    )
