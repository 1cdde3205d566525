"""Helpers shared by the v1 and v2 file parsers."""
from __future__ import annotations

from typing import Any

from .errors import Diagnostic, error, warning
from .fields import check_examples, parse_deprecated, parse_requirement_level, parse_stability, parse_type
from .model import AttrSpec
from .yamlsrc import LineDict

#: fields a ``ref`` may override (Weaver's AttributeSpec::Ref)
REF_OVERRIDE_KEYS = (
    "brief", "examples", "tag", "requirement_level", "sampling_relevant", "note", "stability",
    "deprecated", "annotations", "role",
)
#: fields of an attribute definition (``id`` in v1, ``key`` in v2)
DEFINITION_KEYS = ("type",) + REF_OVERRIDE_KEYS

#: these fields are warnings in Weaver (the registry still resolves)
WARNING_KINDS = frozenset({
    "InvalidExample", "UnknownField", "InvalidAttributeWarning", "InvalidGroupUsesPrefix",
    "InvalidGroupStability",
})


class FileContext:
    """Collects diagnostics for one YAML file."""

    def __init__(self, path: str):
        self.path = path
        self.diagnostics: list[Diagnostic] = []

    def report(self, kind: str, message: str, line: int | None, **details: Any) -> None:
        make = warning if kind in WARNING_KINDS else error
        self.diagnostics.append(make(kind, message, self.path, line, **details))

    def reporter(self, **details: Any):
        """A ``report(kind, message, line)`` callback with fixed details."""
        def report(kind: str, message: str, line: int | None) -> None:
            self.report(kind, message, line, **details)
        return report


def line(raw: Any, key: str | None = None) -> int | None:
    if isinstance(raw, LineDict):
        return raw.line_of(key) if key else raw.line
    return None


def parse_attr_fields(raw: dict[str, Any], keys: tuple[str, ...], ctx: FileContext,
                      group_id: str, attr_name: str) -> dict[str, Any]:
    """Normalise the explicitly written attribute fields listed in ``keys``."""
    report = ctx.reporter(group_id=group_id, attribute_id=attr_name)
    fields: dict[str, Any] = {}
    for key in keys:
        if key not in raw:
            continue
        value = raw[key]
        where = line(raw, key)
        if key == "type":
            value = parse_type(value, report, where)
        elif key == "stability":
            value = parse_stability(value, report, where)
        elif key == "requirement_level":
            value = parse_requirement_level(value, report, where)
        elif key == "deprecated":
            value = parse_deprecated(value, report, where)
        elif key == "annotations":
            value = dict(value) if isinstance(value, dict) else None
        elif key in ("brief", "note") and value is not None and not isinstance(value, str):
            value = str(value)
        fields[key] = value
    return fields


def validate_definition(fields: dict[str, Any], ctx: FileContext, group_id: str, name: str,
                        where: int | None) -> None:
    """Checks Weaver applies to an attribute definition."""
    report = ctx.reporter(group_id=group_id, attribute_id=name)
    if "type" not in fields or fields["type"] is None:
        report("InvalidAttribute", f"attribute '{name}' has no type", where)
    if not fields.get("brief") and fields.get("deprecated") is None:
        report("InvalidAttribute", f"attribute '{name}' is not deprecated and has no brief", where)
    if fields.get("deprecated") is not None and fields.get("stability") == "stable":
        report("InvalidAttributeWarning", f"attribute '{name}' is deprecated but marked stable", where)
    check_examples(fields.get("type"), fields.get("examples"), report, where)


def make_ref(raw: dict[str, Any], ctx: FileContext, group_id: str) -> AttrSpec:
    name = str(raw["ref"])
    fields = parse_attr_fields(raw, REF_OVERRIDE_KEYS, ctx, group_id, name)
    return AttrSpec("ref", name, fields, ctx.path, line(raw), prefixed=raw.get("prefix") is True)


def check_unknown(raw: dict[str, Any], allowed: frozenset[str], ctx: FileContext, what: str) -> None:
    for key in raw:
        if key not in allowed:
            ctx.report("UnknownField", f"unknown field {key!r} in {what}", line(raw, key))
