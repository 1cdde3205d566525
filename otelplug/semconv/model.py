"""In-memory model of a semantic-convention registry, before and after resolution.

Both file formats Weaver reads (v1 ``groups:`` and v2 ``file_format:
definition/2``) are converted at load time into the same unresolved shape,
:class:`GroupSpec` holding :class:`AttrSpec` entries, so the resolver only has
one model to deal with.  Resolution produces :class:`Group` objects holding
fully resolved :class:`Attribute` objects.

Attribute specs keep only the fields written explicitly in the YAML
(``fields``): a ``ref`` overrides exactly those fields of the referenced
definition and inherits the rest, which is Weaver's override rule.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------
# vocabularies

PRIMITIVE_TYPES = frozenset({
    "string", "int", "double", "boolean", "any",
    "string[]", "int[]", "double[]", "boolean[]",
})
TEMPLATE_RE = re.compile(r"^template\[(string|int|double|boolean|any|string\[\]|int\[\]|double\[\]|boolean\[\])\]$")

STABILITY_VALUES = frozenset({
    "stable", "development", "alpha", "beta", "release_candidate", "deprecated", "unmaintained",
})
#: aliases accepted in YAML and the canonical value they resolve to
STABILITY_ALIASES = {"experimental": "development"}

BASIC_REQUIREMENT_LEVELS = frozenset({"required", "recommended", "opt_in"})
REQUIREMENT_LEVEL_KEYS = frozenset({"conditionally_required", "recommended", "opt_in"})

DEPRECATION_REASONS = frozenset({"renamed", "obsoleted", "uncategorized"})

SPAN_KINDS = frozenset({"client", "server", "producer", "consumer", "internal"})
INSTRUMENTS = frozenset({"counter", "updowncounter", "gauge", "histogram"})

#: group types accepted in v1 files; ``resource`` is the legacy name of entity
GROUP_TYPES = frozenset({
    "attribute_group", "span", "event", "metric", "metric_group", "entity", "resource", "scope",
})
GROUP_TYPE_ALIASES = {"resource": "entity"}

#: attribute fields, in the order used for output
ATTRIBUTE_FIELDS = (
    "type", "brief", "examples", "requirement_level", "note", "stability", "deprecated",
    "tag", "sampling_relevant", "annotations", "role",
)


def normalize_stability(value: Any) -> str | None:
    if value is None:
        return None
    value = str(value)
    return STABILITY_ALIASES.get(value, value)


def is_template_type(type_: Any) -> bool:
    return isinstance(type_, str) and type_.startswith("template[")


def template_inner(type_: str) -> str:
    return type_[len("template["):-1]


def is_enum_type(type_: Any) -> bool:
    return isinstance(type_, dict) and "members" in type_


def type_name(type_: Any) -> str:
    """Short type name used in findings (``enum`` for enums)."""
    return "enum" if is_enum_type(type_) else str(type_)


def requirement_level_name(level: Any) -> str:
    """``required`` / ``recommended`` / ``opt_in`` / ``conditionally_required``."""
    if isinstance(level, dict):
        return next(iter(level), "recommended")
    return level or "recommended"


def deprecation_reason(deprecated: Any) -> str | None:
    if isinstance(deprecated, dict):
        return deprecated.get("reason")
    return None


# --------------------------------------------------------------------------
# unresolved specs

@dataclass
class AttrSpec:
    """One entry of a group's ``attributes`` list before resolution.

    kind: ``id`` (defines an attribute), ``ref`` (uses one, overriding the
    explicit ``fields``) or ``ref_group`` (v2: pulls every attribute of a
    group).  ``name`` is the full attribute name (prefix applied) or the
    referenced group id.  ``prefixed`` marks a v1 ``ref`` with ``prefix:
    true``, which defines a new attribute ``<group prefix>.<ref>``.
    """

    kind: str
    name: str
    fields: dict[str, Any]
    path: str
    line: int | None
    prefixed: bool = False


@dataclass
class GroupSpec:
    """A group (v1) or signal/attribute group (v2) before resolution."""

    id: str
    type: str
    fields: dict[str, Any]
    attributes: list[AttrSpec]
    path: str
    line: int | None
    extends: str | None = None
    #: v2 refinement: (signal kind, referenced signal) the group refines
    refines: tuple[str, str] | None = None
    #: v2 attribute groups: ``public`` or ``internal`` (internal ones are
    #: only usable through ``ref_group`` and are not part of the output)
    visibility: str | None = None
    #: ``v1``, ``v2`` or ``resolved`` (published resolved schema)
    source_format: str = "v1"
    #: for v2 signals: the signal identifier (span type, metric name...)
    signal_key: str | None = None


# --------------------------------------------------------------------------
# resolved model

@dataclass
class Attribute:
    """A fully resolved attribute (every field known)."""

    name: str
    type: Any
    brief: str = ""
    examples: Any = None
    requirement_level: Any = "recommended"
    note: str = ""
    stability: str | None = None
    deprecated: Any = None
    tag: str | None = None
    sampling_relevant: bool | None = None
    annotations: dict[str, Any] | None = None
    role: str | None = None
    prefix: bool = False
    #: where the definition lives (for diagnostics)
    path: str | None = None
    line: int | None = None

    @classmethod
    def from_fields(cls, name: str, fields: dict[str, Any], path: str | None = None,
                    line: int | None = None) -> "Attribute":
        attr = cls(name=name, type=fields.get("type"), path=path, line=line)
        attr.apply(fields)
        return attr

    def apply(self, fields: dict[str, Any]) -> None:
        """Override the fields explicitly present in ``fields``."""
        for key in ATTRIBUTE_FIELDS:
            if key in fields and key != "type":
                value = fields[key]
                if key == "brief" or key == "note":
                    value = value or ""
                if key == "requirement_level" and value is None:
                    value = "recommended"
                setattr(self, key, value)
        if fields.get("prefix") is True:
            self.prefix = True

    def copy(self) -> "Attribute":
        return Attribute(**self.__dict__)

    @property
    def is_template(self) -> bool:
        return is_template_type(self.type)

    @property
    def is_enum(self) -> bool:
        return is_enum_type(self.type)

    @property
    def is_deprecated(self) -> bool:
        return self.deprecated is not None

    def enum_values(self) -> list[Any]:
        return [m.get("value") for m in self.type.get("members", [])] if self.is_enum else []

    def to_dict(self) -> dict[str, Any]:
        """Resolved form; the core fields are always present (None when
        unset) so consumers need no defaults, the optional ones only when
        set."""
        out: dict[str, Any] = {
            "name": self.name, "type": self.type, "brief": self.brief, "examples": self.examples,
            "requirement_level": self.requirement_level, "note": self.note or None,
            "stability": self.stability, "deprecated": self.deprecated,
        }
        if self.tag is not None:
            out["tag"] = self.tag
        if self.sampling_relevant is not None:
            out["sampling_relevant"] = self.sampling_relevant
        if self.annotations:
            out["annotations"] = self.annotations
        if self.role is not None:
            out["role"] = self.role
        if self.prefix:
            out["prefix"] = True
        return out


#: group fields copied to the resolved output, in output order
GROUP_OUTPUT_FIELDS = (
    "brief", "note", "prefix", "stability", "deprecated", "span_kind", "events", "metric_name",
    "instrument", "unit", "name", "display_name", "body", "annotations", "entity_associations",
)


@dataclass
class Group:
    """A resolved group: its own fields plus fully resolved attributes."""

    id: str
    type: str
    fields: dict[str, Any]
    attributes: list[Attribute]
    path: str
    line: int | None
    refines: tuple[str, str] | None = None
    visibility: str | None = None
    source_format: str = "v1"
    signal_key: str | None = None
    #: True when the group comes from the registry itself, False when it was
    #: imported from a dependency
    local: bool = True

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    @property
    def stability(self) -> str | None:
        return self.fields.get("stability")

    @property
    def deprecated(self) -> Any:
        return self.fields.get("deprecated")

    @property
    def signal_name(self) -> str:
        """Name a sample of this signal carries (metric name, event name...)."""
        if self.type == "metric":
            return self.fields.get("metric_name") or self.id
        if self.type == "span":
            return self.span_type
        if self.type in ("event", "entity"):
            return self.fields.get("name") or self.id
        return self.id

    @property
    def span_type(self) -> str:
        """v2 span ``type``; for v1 spans the id without its ``span.`` prefix."""
        if self.signal_key:
            return self.signal_key
        return self.id[len("span."):] if self.id.startswith("span.") else self.id

    def attribute(self, name: str) -> Attribute | None:
        for attr in self.attributes:
            if attr.name == name:
                return attr
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in GROUP_OUTPUT_FIELDS:
            value = self.fields.get(key)
            if value is None or value == "" or value == [] or value == {}:
                continue
            out[key] = value
        out["attributes"] = [a.to_dict() for a in self.attributes]
        out["provenance"] = {"path": self.path, "line": self.line}
        return out


@dataclass
class Manifest:
    """``manifest.yaml`` / legacy ``registry_manifest.yaml``."""

    name: str | None = None
    description: str | None = None
    semconv_version: str | None = None
    schema_url: str | None = None
    stability: str | None = None
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    resolved_registry_uri: str | None = None
    path: str | None = None
