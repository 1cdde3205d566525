"""The resolved registry and its lookup tables."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .errors import Diagnostic
from .model import Attribute, Group, Manifest


@dataclass
class ResolvedRegistry:
    """Result of resolution: groups with resolved attributes plus the
    registry attribute catalog (every attribute definition by name)."""

    path: str
    manifest: Manifest | None
    groups: list[Group]
    attributes: dict[str, Attribute]
    local_attribute_names: set[str] = field(default_factory=set)
    warnings: list[Diagnostic] = field(default_factory=list)

    # ----------------------------------------------------------- lookups
    @cached_property
    def by_id(self) -> dict[str, Group]:
        return {g.id: g for g in self.groups}

    def of_type(self, gtype: str, *, refinements: bool = False) -> list[Group]:
        return [g for g in self.groups if g.type == gtype and (refinements or g.refines is None)]

    @cached_property
    def metrics(self) -> dict[str, Group]:
        """metric name -> definition (refinements excluded)."""
        return {g.fields.get("metric_name"): g for g in self.of_type("metric") if g.fields.get("metric_name")}

    @cached_property
    def events(self) -> dict[str, Group]:
        return {g.signal_name: g for g in self.of_type("event")}

    @cached_property
    def entities(self) -> dict[str, Group]:
        return {g.signal_name: g for g in self.of_type("entity")}

    @cached_property
    def spans(self) -> dict[str, Group]:
        """span type (v2 ``type`` / v1 id without ``span.``) -> definition."""
        return {g.span_type: g for g in self.of_type("span")}

    @property
    def local_attributes(self) -> dict[str, Attribute]:
        return {n: a for n, a in self.attributes.items() if n in self.local_attribute_names}

    @property
    def name(self) -> str | None:
        return self.manifest.name if self.manifest else None

    # ------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.manifest is not None:
            out["registry"] = {k: v for k, v in {
                "name": self.manifest.name,
                "schema_url": self.manifest.schema_url,
                "semconv_version": self.manifest.semconv_version,
                "stability": self.manifest.stability,
            }.items() if v is not None}
        out["groups"] = [g.to_dict() for g in self.groups]
        return out
