"""Parser for v2 definition files (``file_format: definition/2``).

v2 signals are converted to the group model Weaver uses for its resolved
(v1-compatible) output, so they resolve and print exactly like v1 groups:

* ``attributes`` (keys) -> one attribute group ``registry.<file path dotted>``
* ``attribute_groups`` -> attribute groups (``internal`` ones only feed
  ``ref_group`` and are left out of the output)
* ``spans`` -> ``span.<type>``, ``metrics`` -> ``metric.<name>``,
  ``events`` -> ``event.<name>``, ``entities`` -> ``entity.<type>``
* ``*_refinements`` -> groups with the refinement id that start from the
  refined signal's attributes (like ``extends``) and override them.
"""
from __future__ import annotations

import os
from typing import Any

from .fields import parse_deprecated, parse_stability
from .model import INSTRUMENTS, SPAN_KINDS, AttrSpec, GroupSpec
from .parse_common import (
    DEFINITION_KEYS,
    FileContext,
    check_unknown,
    line,
    make_ref,
    parse_attr_fields,
    validate_definition,
)

TOP_KEYS = frozenset({
    "file_format", "version", "attributes", "attribute_groups", "spans", "metrics", "events",
    "entities", "span_refinements", "metric_refinements", "event_refinements",
    "entity_refinements", "imports", "schema_url",
})
SIGNAL_COMMON = {"brief", "note", "stability", "deprecated", "annotations", "attributes",
                 "requirement_level", "entity_associations", "visibility"}

#: (yaml section, group type, key field, id prefix)
SIGNAL_SECTIONS = (
    ("spans", "span", "type", "span."),
    ("metrics", "metric", "name", "metric."),
    ("events", "event", "name", "event."),
    ("entities", "entity", "type", "entity."),
)
REFINEMENT_SECTIONS = (
    ("span_refinements", "span"),
    ("metric_refinements", "metric"),
    ("event_refinements", "event"),
    ("entity_refinements", "entity"),
)


#: brief Weaver gives the group it synthesises for a v2 file's attribute keys
SYNTHETIC_BRIEF = "<synthetic v2>"


def is_v2_document(doc: Any) -> bool:
    return isinstance(doc, dict) and (
        doc.get("file_format") == "definition/2" or str(doc.get("version", "")) == "2")


def registry_group_id(display_path: str) -> str:
    """Weaver names the group holding a v2 file's attribute keys after the
    file's path: ``registry.<path without extension, '/' -> '.'>``."""
    stem = os.path.splitext(display_path)[0].replace(os.sep, "/").lstrip("./")
    return "registry." + stem.replace("/", ".")


def parse_v2_document(doc: dict[str, Any], ctx: FileContext) -> list[GroupSpec]:
    check_unknown(doc, TOP_KEYS, ctx, "v2 file")
    groups: list[GroupSpec] = []
    if doc.get("attributes"):
        groups.append(_attribute_registry(doc, ctx))
    for raw in _section(doc, "attribute_groups", ctx):
        groups.append(_attribute_group(raw, ctx))
    for section, gtype, key_field, id_prefix in SIGNAL_SECTIONS:
        for raw in _section(doc, section, ctx):
            group = _signal(raw, gtype, key_field, id_prefix, ctx)
            if group is not None:
                groups.append(group)
    for section, gtype in REFINEMENT_SECTIONS:
        for raw in _section(doc, section, ctx):
            group = _refinement(raw, gtype, ctx)
            if group is not None:
                groups.append(group)
    return groups


def _section(doc: dict[str, Any], key: str, ctx: FileContext) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.report("InvalidSemConvSpec", f"'{key}' must be a list", line(doc, key))
        return []
    good = [v for v in value if isinstance(v, dict)]
    if len(good) != len(value):
        ctx.report("InvalidSemConvSpec", f"entries of '{key}' must be mappings", line(doc, key))
    return good


def _common_fields(raw: dict[str, Any], ctx: FileContext, group_id: str) -> dict[str, Any]:
    report = ctx.reporter(group_id=group_id)
    fields: dict[str, Any] = {}
    if raw.get("brief") is not None:
        fields["brief"] = str(raw["brief"])
    if raw.get("note") is not None:
        fields["note"] = str(raw["note"])
    stability = parse_stability(raw.get("stability"), report, line(raw, "stability"))
    if stability is not None:
        fields["stability"] = stability
    deprecated = parse_deprecated(raw.get("deprecated"), report, line(raw, "deprecated"))
    if deprecated is not None:
        fields["deprecated"] = deprecated
    if raw.get("annotations"):
        fields["annotations"] = dict(raw["annotations"])
    if raw.get("entity_associations"):
        fields["entity_associations"] = list(raw["entity_associations"])
    return fields


def _attribute_registry(doc: dict[str, Any], ctx: FileContext) -> GroupSpec:
    group_id = registry_group_id(ctx.path)
    specs = []
    for raw in _section(doc, "attributes", ctx):
        where = line(raw)
        if "key" not in raw:
            ctx.report("InvalidAttribute", "v2 attribute without 'key'", where)
            continue
        name = str(raw["key"])
        check_unknown(raw, frozenset({"key"}) | frozenset(DEFINITION_KEYS), ctx, f"attribute '{name}'")
        fields = parse_attr_fields(raw, DEFINITION_KEYS, ctx, group_id, name)
        validate_definition(fields, ctx, group_id, name, where)
        fields.setdefault("brief", "")
        fields.setdefault("type", "string")
        specs.append(AttrSpec("id", name, fields, ctx.path, where))
    return GroupSpec(id=group_id, type="attribute_group", fields={"brief": SYNTHETIC_BRIEF}, attributes=specs,
                     path=ctx.path, line=line(doc, "attributes"), source_format="v2",
                     visibility="registry")


def _attr_refs(raw_list: Any, ctx: FileContext, group_id: str, role: str | None = None) -> list[AttrSpec]:
    specs: list[AttrSpec] = []
    if raw_list is None:
        return specs
    if not isinstance(raw_list, list):
        ctx.report("InvalidSemConvSpec", f"'{group_id}': attributes must be a list", None)
        return specs
    for raw in raw_list:
        if not isinstance(raw, dict):
            ctx.report("InvalidSemConvSpec", f"'{group_id}': attribute entry must be a mapping", None)
            continue
        if "ref_group" in raw:
            specs.append(AttrSpec("ref_group", str(raw["ref_group"]), {}, ctx.path, line(raw)))
        elif "ref" in raw:
            spec = make_ref(raw, ctx, group_id)
            if role is not None:
                spec.fields["role"] = role
            specs.append(spec)
        else:
            ctx.report("InvalidAttribute", f"'{group_id}': v2 attribute entry needs 'ref' or 'ref_group'",
                       line(raw), group_id=group_id)
    return specs


def _attribute_group(raw: dict[str, Any], ctx: FileContext) -> GroupSpec:
    group_id = str(raw.get("id") or "")
    if not group_id:
        ctx.report("InvalidSemConvSpec", "attribute group without 'id'", line(raw))
    visibility = raw.get("visibility") or "internal"
    if visibility not in ("public", "internal"):
        ctx.report("InvalidSemConvSpec", f"attribute group '{group_id}': visibility must be public or internal",
                   line(raw, "visibility"))
    fields = _common_fields(raw, ctx, group_id)
    if visibility == "public" and "brief" not in fields:
        ctx.report("InvalidSemConvSpec", f"public attribute group '{group_id}' needs a brief", line(raw))
    fields.setdefault("brief", "")
    return GroupSpec(id=group_id, type="attribute_group", fields=fields,
                     attributes=_attr_refs(raw.get("attributes"), ctx, group_id), path=ctx.path,
                     line=line(raw), source_format="v2", visibility=visibility)


def _signal(raw: dict[str, Any], gtype: str, key_field: str, id_prefix: str, ctx: FileContext) -> GroupSpec | None:
    key = raw.get(key_field)
    if not key or not isinstance(key, str):
        ctx.report("InvalidSemConvSpec", f"{gtype} without '{key_field}'", line(raw))
        return None
    group_id = id_prefix + key
    fields = _common_fields(raw, ctx, group_id)
    report = ctx.reporter(group_id=group_id)
    if "brief" not in fields:
        report("InvalidSemConvSpec", f"{gtype} '{key}' needs a brief", line(raw))
    fields.setdefault("brief", "")
    if "stability" not in fields:
        report("InvalidGroupStability", f"{gtype} '{key}' has no stability", line(raw))
    attributes: list[AttrSpec]
    if gtype == "span":
        kind = raw.get("kind")
        if kind is None:
            report("InvalidSpanMissingSpanKind", f"span '{key}' has no kind", line(raw))
        elif kind not in SPAN_KINDS:
            report("InvalidGroup", f"span '{key}' has unknown kind {kind!r}", line(raw, "kind"))
        fields["span_kind"] = kind
        fields["name"] = key
        attributes = _attr_refs(raw.get("attributes"), ctx, group_id)
    elif gtype == "metric":
        for required in ("instrument", "unit"):
            if raw.get(required) is None:
                report("InvalidMetric", f"metric '{key}' has no {required}", line(raw))
        if raw.get("instrument") is not None and raw["instrument"] not in INSTRUMENTS:
            report("InvalidMetric", f"metric '{key}' has unknown instrument {raw['instrument']!r}",
                   line(raw, "instrument"))
        fields.update(metric_name=key, instrument=raw.get("instrument"), unit=raw.get("unit"))
        attributes = _attr_refs(raw.get("attributes"), ctx, group_id)
    elif gtype == "event":
        fields["name"] = key
        if raw.get("body") is not None:
            fields["body"] = raw["body"]
        attributes = _attr_refs(raw.get("attributes"), ctx, group_id)
    else:  # entity
        fields["name"] = key
        attributes = (_attr_refs(raw.get("identity"), ctx, group_id, role="identifying")
                      + _attr_refs(raw.get("description"), ctx, group_id, role="descriptive"))
    return GroupSpec(id=group_id, type=gtype, fields=fields, attributes=attributes, path=ctx.path,
                     line=line(raw), source_format="v2", signal_key=key)


def _refinement(raw: dict[str, Any], gtype: str, ctx: FileContext) -> GroupSpec | None:
    group_id = raw.get("id")
    base = raw.get("ref")
    if not group_id or not base:
        ctx.report("InvalidSemConvSpec", f"{gtype} refinement needs 'id' and 'ref'", line(raw))
        return None
    group_id, base = str(group_id), str(base)
    fields = _common_fields(raw, ctx, group_id)
    if gtype == "entity":
        attributes = (_attr_refs(raw.get("identity"), ctx, group_id, role="identifying")
                      + _attr_refs(raw.get("description"), ctx, group_id, role="descriptive"))
    else:
        attributes = _attr_refs(raw.get("attributes"), ctx, group_id)
    return GroupSpec(id=group_id, type=gtype, fields=fields, attributes=attributes, path=ctx.path,
                     line=line(raw), refines=(gtype, base), source_format="v2")
