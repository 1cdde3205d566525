"""Reader for published registries (``file_format: resolved/2.0``).

A registry may depend on another one that was published already resolved:
its manifest names the resolved file with ``resolved_registry_uri``.  Such a
file holds an ``attribute_catalog`` and signals whose attributes point into
it (``base: <index>`` plus overridden fields).  It is converted to groups so
that the resolver treats it like any other dependency: the catalog entries
become attribute definitions, signals become groups named by their key.
Refinements of a published registry are not imported (they only refine
signals the published registry already exports).
"""
from __future__ import annotations

from typing import Any

from .model import AttrSpec, GroupSpec
from .parse_common import DEFINITION_KEYS, REF_OVERRIDE_KEYS, FileContext, line, parse_attr_fields
from .parse_v2 import registry_group_id

#: (section, group type, key field)
_SECTIONS = (
    ("attribute_groups", "attribute_group", "id"),
    ("spans", "span", "type"),
    ("metrics", "metric", "name"),
    ("events", "event", "name"),
    ("entities", "entity", "type"),
)


def is_resolved_document(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("file_format", "")).startswith("resolved/")


def parse_resolved_document(doc: dict[str, Any], ctx: FileContext) -> list[GroupSpec]:
    catalog = doc.get("attribute_catalog") or []
    # The catalog may hold several variants of one key (as refined by
    # signals); the first is the registry definition, a signal's ``base``
    # index selects the variant it uses.
    keys: list[tuple[str, dict[str, Any]]] = []
    definitions: list[AttrSpec] = []
    defined: set[str] = set()
    for raw in catalog:
        if not isinstance(raw, dict) or "key" not in raw:
            ctx.report("InvalidSemConvSpec", "attribute_catalog entry without 'key'", line(raw))
            keys.append(("", {}))
            continue
        name = str(raw["key"])
        fields = parse_attr_fields(raw, DEFINITION_KEYS, ctx, "attribute_catalog", name)
        fields.setdefault("brief", "")
        keys.append((name, {k: v for k, v in fields.items() if k != "type"}))
        if name not in defined:
            defined.add(name)
            definitions.append(AttrSpec("id", name, fields, ctx.path, line(raw)))
    groups = [GroupSpec(id=registry_group_id(ctx.path), type="attribute_group", fields={"brief": ""},
                        attributes=definitions, path=ctx.path, line=line(doc, "attribute_catalog"),
                        source_format="resolved", visibility="registry")]
    registry = doc.get("registry") or {}
    for section, gtype, key_field in _SECTIONS:
        for raw in registry.get(section) or []:
            group = _signal(raw, gtype, key_field, keys, ctx)
            if group is not None:
                groups.append(group)
    return groups


def _refs(raw_list: Any, keys: list[tuple[str, dict[str, Any]]], ctx: FileContext, group_id: str, role: str | None = None) -> list[AttrSpec]:
    specs = []
    for raw in raw_list or []:
        index = raw.get("base") if isinstance(raw, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(keys):
            ctx.report("InvalidSemConvSpec", f"'{group_id}': attribute 'base' is not a catalog index", line(raw))
            continue
        name, variant = keys[index]
        fields = {**variant, **parse_attr_fields(raw, REF_OVERRIDE_KEYS, ctx, group_id, name)}
        if role is not None:
            fields["role"] = role
        specs.append(AttrSpec("ref", name, fields, ctx.path, line(raw)))
    return specs


def _signal(raw: Any, gtype: str, key_field: str, keys: list[tuple[str, dict[str, Any]]], ctx: FileContext) -> GroupSpec | None:
    if not isinstance(raw, dict) or not raw.get(key_field):
        ctx.report("InvalidSemConvSpec", f"published {gtype} without '{key_field}'", line(raw))
        return None
    key = str(raw[key_field])
    fields: dict[str, Any] = {"brief": str(raw.get("brief") or "")}
    for name in ("note", "stability", "deprecated"):
        if raw.get(name) is not None:
            fields[name] = raw[name]
    fields["annotations"] = dict(raw.get("annotations") or {})
    assoc = [a.get("type") if isinstance(a, dict) else a for a in raw.get("entity_associations") or []]
    if assoc:
        fields["entity_associations"] = assoc
    if gtype == "entity":
        attributes = (_refs(raw.get("identity"), keys, ctx, key, "identifying")
                      + _refs(raw.get("description"), keys, ctx, key, "descriptive"))
    else:
        attributes = _refs(raw.get("attributes"), keys, ctx, key)
    if gtype == "span":
        fields.update(span_kind=raw.get("kind"), name=key)
    elif gtype == "metric":
        fields.update(metric_name=key, instrument=raw.get("instrument"), unit=raw.get("unit"))
    elif gtype in ("event", "entity"):
        fields["name"] = key
    visibility = "public" if gtype == "attribute_group" else None
    return GroupSpec(id=key, type=gtype, fields=fields, attributes=attributes, path=ctx.path, line=line(raw),
                     source_format="resolved", visibility=visibility, signal_key=key)
