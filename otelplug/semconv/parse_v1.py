"""Parser for v1 registry files (top-level ``groups:``)."""
from __future__ import annotations

from typing import Any

from .fields import parse_deprecated, parse_stability
from .model import GROUP_TYPE_ALIASES, GROUP_TYPES, INSTRUMENTS, SPAN_KINDS, AttrSpec, GroupSpec
from .parse_common import (
    DEFINITION_KEYS,
    FileContext,
    check_unknown,
    line,
    make_ref,
    parse_attr_fields,
    validate_definition,
)

GROUP_KEYS = frozenset({
    "id", "type", "brief", "note", "prefix", "extends", "stability", "deprecated", "attributes",
    "constraints", "span_kind", "events", "metric_name", "instrument", "unit", "name",
    "display_name", "body", "annotations", "entity_associations",
})
ATTR_KEYS = frozenset({"id", "ref", "prefix"}) | frozenset(DEFINITION_KEYS) | {"display_name"}


def _normalize_body(value: Any) -> Any:
    """Event bodies (any-value trees) keep their shape; only stability
    aliases are normalised so they compare equal to resolved output."""
    if isinstance(value, dict):
        return {k: (parse_stability(v, lambda *a: None, None) if k == "stability" else _normalize_body(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_body(v) for v in value]
    return value


def parse_v1_groups(raw_groups: Any, ctx: FileContext, top: Any) -> list[GroupSpec]:
    if not isinstance(raw_groups, list):
        ctx.report("InvalidSemConvSpec", "'groups' must be a list", line(top, "groups"))
        return []
    groups = []
    for raw in raw_groups:
        group = _parse_group(raw, ctx)
        if group is not None:
            groups.append(group)
    return groups


def _parse_group(raw: Any, ctx: FileContext) -> GroupSpec | None:
    if not isinstance(raw, dict):
        ctx.report("InvalidSemConvSpec", "a group must be a mapping", None)
        return None
    where = line(raw)
    group_id = raw.get("id")
    if not group_id:
        ctx.report("InvalidSemConvSpec", "group without 'id'", where)
        return None
    group_id = str(group_id)
    report = ctx.reporter(group_id=group_id)
    check_unknown(raw, GROUP_KEYS, ctx, f"group '{group_id}'")

    gtype = raw.get("type")
    if gtype is None:
        report("InvalidGroupMissingType", f"group '{group_id}' has no type", where)
        gtype = "attribute_group"
    elif gtype not in GROUP_TYPES:
        report("InvalidSemConvSpec", f"group '{group_id}' has unknown type {gtype!r}", line(raw, "type"))
    gtype = GROUP_TYPE_ALIASES.get(gtype, gtype)
    if "brief" not in raw:
        report("InvalidSemConvSpec", f"group '{group_id}' is missing the required field 'brief'", where)

    fields: dict[str, Any] = {}
    for key in ("brief", "note", "prefix", "span_kind", "metric_name", "instrument", "unit", "name",
                "display_name", "annotations", "entity_associations"):
        if raw.get(key) is not None:
            fields[key] = raw[key]
    fields["brief"] = str(fields.get("brief", ""))
    if raw.get("events"):
        fields["events"] = list(raw["events"])
    if raw.get("body") is not None:
        fields["body"] = _normalize_body(raw["body"])
    stability = parse_stability(raw.get("stability"), report, line(raw, "stability"))
    if stability is not None:
        fields["stability"] = stability
    deprecated = parse_deprecated(raw.get("deprecated"), report, line(raw, "deprecated"))
    if deprecated is not None:
        fields["deprecated"] = deprecated

    _validate_signal_fields(gtype, group_id, fields, raw, report)

    prefix = str(raw.get("prefix") or "")
    if prefix:
        report("InvalidGroupUsesPrefix", f"group '{group_id}' uses the legacy 'prefix' field; "
               "write full attribute names instead", line(raw, "prefix"))
    attributes = []
    raw_attrs = raw.get("attributes") or []
    if not isinstance(raw_attrs, list):
        report("InvalidSemConvSpec", f"group '{group_id}': 'attributes' must be a list", line(raw, "attributes"))
        raw_attrs = []
    seen_refs: set[str] = set()
    for raw_attr in raw_attrs:
        spec = _parse_attribute(raw_attr, prefix, group_id, ctx)
        if spec is None:
            continue
        if spec.kind == "ref":
            if spec.name in seen_refs:
                report("InvalidGroupDuplicateAttributeRef",
                       f"group '{group_id}' references attribute '{spec.name}' more than once", spec.line)
            seen_refs.add(spec.name)
        attributes.append(spec)

    return GroupSpec(
        id=group_id, type=gtype, fields=fields, attributes=attributes, path=ctx.path, line=where,
        extends=str(raw["extends"]) if raw.get("extends") else None, source_format="v1",
    )


def _validate_signal_fields(gtype: str, group_id: str, fields: dict[str, Any], raw: Any, report) -> None:
    where = line(raw)
    if gtype == "span":
        kind = fields.get("span_kind")
        if kind is None:
            report("InvalidSpanMissingSpanKind", f"span group '{group_id}' has no span_kind", where)
        elif kind not in SPAN_KINDS:
            report("InvalidGroup", f"span group '{group_id}' has unknown span_kind {kind!r}", line(raw, "span_kind"))
    elif fields.get("span_kind") is not None:
        report("InvalidGroup", f"group '{group_id}' has span_kind but is not a span", line(raw, "span_kind"))
    if gtype == "metric":
        for key in ("metric_name", "instrument", "unit"):
            if fields.get(key) is None:
                report("InvalidMetric", f"metric group '{group_id}' has no {key}", where)
        instrument = fields.get("instrument")
        if instrument is not None and instrument not in INSTRUMENTS:
            report("InvalidMetric", f"metric group '{group_id}' has unknown instrument {instrument!r}",
                   line(raw, "instrument"))
    if gtype == "event" and not fields.get("name") and not fields.get("prefix"):
        report("InvalidGroup", f"event group '{group_id}' has neither name nor prefix", where)
    if gtype != "event" and "body" in fields:
        report("InvalidGroup", f"group '{group_id}' has a body but is not an event", line(raw, "body"))


def _parse_attribute(raw: Any, prefix: str, group_id: str, ctx: FileContext) -> AttrSpec | None:
    if not isinstance(raw, dict):
        ctx.report("InvalidSemConvSpec", f"group '{group_id}': attribute entry must be a mapping", None)
        return None
    where = line(raw)
    check_unknown(raw, ATTR_KEYS, ctx, f"attribute of group '{group_id}'")
    if "ref" in raw and "id" in raw:
        ctx.report("InvalidAttribute", f"group '{group_id}': attribute has both 'id' and 'ref'", where,
                   group_id=group_id)
        return None
    if "ref" in raw:
        return make_ref(raw, ctx, group_id)
    if "id" not in raw:
        ctx.report("InvalidAttribute", f"group '{group_id}': attribute has neither 'id' nor 'ref'", where,
                   group_id=group_id)
        return None
    local_id = str(raw["id"])
    name = f"{prefix}.{local_id}" if prefix else local_id
    fields = parse_attr_fields(raw, DEFINITION_KEYS, ctx, group_id, name)
    validate_definition(fields, ctx, group_id, name, where)
    fields.setdefault("brief", "")
    fields.setdefault("type", "string")
    return AttrSpec("id", name, fields, ctx.path, where)
