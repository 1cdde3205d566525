"""Parsing and validation of the field values shared by both file formats.

Each function takes the raw YAML value plus a ``report`` callback and returns
the normalised value.  Problems are reported (with the line of the offending
key) instead of raised, so that one pass over a registry lists every problem.
"""
from __future__ import annotations

from typing import Any, Callable

from .model import (
    BASIC_REQUIREMENT_LEVELS,
    DEPRECATION_REASONS,
    PRIMITIVE_TYPES,
    REQUIREMENT_LEVEL_KEYS,
    STABILITY_VALUES,
    TEMPLATE_RE,
    normalize_stability,
)
from .yamlsrc import LineDict

Report = Callable[[str, str, "int | None"], None]  # (kind, message, line)


def _line(raw: Any, key: str | None = None) -> int | None:
    if isinstance(raw, LineDict):
        return raw.line_of(key) if key else raw.line
    return None


def parse_stability(value: Any, report: Report, line: int | None) -> str | None:
    if value is None:
        return None
    stability = normalize_stability(value)
    if stability not in STABILITY_VALUES:
        report("InvalidStability", f"unknown stability {value!r}", line)
    return stability


def parse_requirement_level(value: Any, report: Report, line: int | None) -> Any:
    """``required`` | ``recommended`` | ``opt_in`` or a one-key mapping
    (``conditionally_required``/``recommended``/``opt_in``) carrying the text
    that explains the condition."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in BASIC_REQUIREMENT_LEVELS:
            return value
        if value == "conditionally_required":
            report("InvalidRequirementLevel", "conditionally_required needs a condition text", line)
            return {"conditionally_required": ""}
    elif isinstance(value, dict) and len(value) == 1:
        key, text = next(iter(value.items()))
        if key in REQUIREMENT_LEVEL_KEYS:
            return {key: "" if text is None else str(text)}
    report("InvalidRequirementLevel", f"invalid requirement_level {value!r}", line)
    return "recommended"


def parse_deprecated(value: Any, report: Report, line: int | None) -> dict[str, Any] | None:
    """Structured ``{reason: renamed|obsoleted|uncategorized, ...}`` or the
    legacy free-text form, which Weaver reads as ``obsoleted`` with the text
    as note."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"reason": "obsoleted", "note": value}
    if isinstance(value, dict):
        reason = value.get("reason")
        unknown = set(value) - {"reason", "note", "renamed_to"}
        if unknown:
            report("InvalidDeprecated", f"unknown deprecated field(s) {sorted(unknown)}", line)
        if reason not in DEPRECATION_REASONS:
            report("InvalidDeprecated", f"deprecated.reason must be one of {sorted(DEPRECATION_REASONS)}, got {reason!r}", line)
            return {"reason": "uncategorized", **({"note": value["note"]} if value.get("note") else {})}
        out: dict[str, Any] = {"reason": reason}
        if reason == "renamed":
            if not value.get("renamed_to"):
                report("InvalidDeprecated", "deprecated.reason 'renamed' requires renamed_to", line)
            out["renamed_to"] = value.get("renamed_to")
        if value.get("note") is not None:
            out["note"] = value["note"]
        return out
    report("InvalidDeprecated", f"deprecated must be a string or a mapping, got {type(value).__name__}", line)
    return None


def _parse_member(raw: Any, report: Report, line: int | None) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or "id" not in raw or "value" not in raw:
        report("InvalidAttributeType", "enum member needs 'id' and 'value'", _line(raw) or line)
        return None
    member: dict[str, Any] = {"id": str(raw["id"]), "value": raw["value"]}
    mline = _line(raw)
    if raw.get("brief") is not None:
        member["brief"] = raw["brief"]
    if raw.get("note") is not None:
        member["note"] = raw["note"]
    stability = parse_stability(raw.get("stability"), report, mline)
    if stability is not None:
        member["stability"] = stability
    deprecated = parse_deprecated(raw.get("deprecated"), report, mline)
    if deprecated is not None:
        member["deprecated"] = deprecated
    if raw.get("annotations"):
        member["annotations"] = dict(raw["annotations"])
    return member


def parse_type(value: Any, report: Report, line: int | None) -> Any:
    """Primitive, array, ``template[...]`` or enum (``{members: [...]}``)."""
    if isinstance(value, str):
        if value in PRIMITIVE_TYPES or TEMPLATE_RE.match(value):
            return value
        report("InvalidAttributeType", f"unknown attribute type {value!r}", line)
        return value
    if isinstance(value, dict) and isinstance(value.get("members"), list):
        members = [m for m in (_parse_member(r, report, line) for r in value["members"]) if m]
        return {"members": members}
    report("InvalidAttributeType", f"invalid attribute type {value!r}", line)
    return "string"


_EXAMPLE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def check_examples(type_: Any, examples: Any, report: Report, line: int | None) -> None:
    """Examples must have the attribute's type (an array attribute takes a
    list of arrays, or a single array)."""
    if examples is None or not isinstance(type_, str):
        return
    base = type_[len("template["):-1] if type_.startswith("template[") else type_
    if base == "any":
        return
    is_array = base.endswith("[]")
    check = _EXAMPLE_CHECKS.get(base[:-2] if is_array else base)
    if check is None:
        return
    if is_array:
        candidates = examples if isinstance(examples, list) else [examples]
        if candidates and not isinstance(candidates[0], list):
            candidates = [candidates]  # a single array written flat
        ok = all(isinstance(c, list) and all(check(v) for v in c) for c in candidates)
    else:
        candidates = examples if isinstance(examples, list) else [examples]
        ok = all(check(v) for v in candidates)
    if not ok:
        report("InvalidExample", f"examples {examples!r} do not match type {type_!r}", line)
