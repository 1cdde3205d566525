"""Resolution of ``ref``, ``ref_group``, ``extends``, refinements and imports.

The rules are Weaver's:

* an attribute *definition* (v1 ``id`` with the group ``prefix`` applied, v2
  ``key``) is a registry attribute; defining the same name twice is
  ``DuplicateAttributeId``;
* a ``ref`` copies the referenced definition and overrides only the fields
  written next to it (type can never be overridden);
* ``extends`` (v1) and refinements (v2) start from the parent's attribute
  list, then the group's own entries override entry by entry and field by
  field; ``ref_group`` (v2) merges another group's entries the same way;
* a v1 ``ref`` with ``prefix: true`` defines ``<group prefix>.<ref>``;
* groups of dependency registries are only part of the output when the
  registry ``imports`` them; their attributes are always referenceable.

Resolution is written as memoised recursion over an index of the groups
(not Weaver's fix-point loops) so a cycle is detected and reported instead
of looping.
"""
from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass
from typing import Any

from .constraints import constraint_diagnostics, declared
from .errors import Diagnostic, SemconvError, error
from .loader import LoadedRegistry, load_registry
from .model import Attribute, AttrSpec, Group, GroupSpec
from .registry import ResolvedRegistry


@dataclass
class _Entry:
    """One attribute of a group while layering: a definition (``id``) or a
    reference (``ref``) with the fields written so far."""

    kind: str
    name: str
    fields: dict[str, Any]
    spec: AttrSpec

    def merged_with(self, other: "_Entry") -> "_Entry":
        if other.kind == "id":
            return other
        fields = dict(self.fields)
        fields.update(other.fields)
        return _Entry(self.kind, self.name, fields, other.spec)


def resolve_registry(path_or_loaded: str | LoadedRegistry) -> ResolvedRegistry:
    """Load (if given a path) and resolve a registry; raises SemconvError."""
    loaded = path_or_loaded if isinstance(path_or_loaded, LoadedRegistry) else load_registry(path_or_loaded)
    return _Resolver(loaded).run()


class _Resolver:
    def __init__(self, loaded: LoadedRegistry):
        self.loaded = loaded
        self.errors: list[Diagnostic] = []
        # every group of the registry and of its dependencies; local first so
        # that a local definition wins over a dependency's
        self.local_groups = list(loaded.groups)
        self.pool: list[GroupSpec] = list(loaded.groups)
        for dep in _all_dependencies(loaded):
            self.pool.extend(dep.groups)
        self.by_id: dict[str, GroupSpec] = {}
        for g in self.pool:
            self.by_id.setdefault(g.id, g)
        self._layer_cache: dict[int, dict[str, _Entry]] = {}
        self._in_progress: set[int] = set()
        self._roots: dict[str, Attribute] = {}
        self._root_defs: dict[str, tuple[GroupSpec, AttrSpec]] = {}
        self._prefixed: dict[str, tuple[GroupSpec, AttrSpec]] = {}

    # ------------------------------------------------------------------ run
    def run(self) -> ResolvedRegistry:
        self._check_duplicates()
        self._collect_definitions()
        resolved: list[Group] = []
        exported = self._exported_ids(self.loaded)
        local_ids = {id(g) for g in self.local_groups}
        for spec in self.pool:
            if id(spec) not in local_ids and id(spec) not in exported:
                continue
            if spec.visibility == "internal":
                self._layers(spec)  # still validate its references
                continue
            group = self._materialize(spec, local=id(spec) in local_ids)
            if group is not None:
                resolved.append(group)
        for spec in self.pool:  # report bad refs in non-exported dependency groups too
            if id(spec) not in local_ids and id(spec) not in exported:
                self._layers(spec)
        local_names = {a.name for g in self.local_groups for a in g.attributes if a.kind == "id"}
        local_names |= {n for n, (g, _s) in self._prefixed.items() if id(g) in local_ids}
        attributes = {name: self._root(name) for name in list(self._root_defs) + list(self._prefixed)}
        attributes = {k: v for k, v in attributes.items() if v is not None}
        self.errors += _constraint_errors(attributes, resolved)
        if self.errors:
            raise SemconvError(_dedupe(self.errors))
        resolved.sort(key=lambda g: g.id)
        return ResolvedRegistry(
            path=self.loaded.path, manifest=self.loaded.manifest, groups=resolved,
            attributes=attributes, local_attribute_names=local_names,
            warnings=list(self.loaded.warnings) + [w for d in _all_dependencies(self.loaded) for w in d.warnings],
        )

    # ----------------------------------------------------------- duplicates
    def _check_duplicates(self) -> None:
        seen: dict[str, list[GroupSpec]] = {}
        metrics: dict[str, list[GroupSpec]] = {}
        for g in self.local_groups:
            seen.setdefault(g.id, []).append(g)
            if g.type == "metric" and g.refines is None and g.fields.get("metric_name"):
                metrics.setdefault(g.fields["metric_name"], []).append(g)
        for gid, groups in seen.items():
            if len(groups) > 1:
                paths = sorted({g.path for g in groups})
                self.errors.append(error(
                    "DuplicateGroupId", f"group id '{gid}' is defined {len(groups)} times ({', '.join(paths)})",
                    groups[1].path, groups[1].line, group_id=gid, provenances=paths))
        for name, groups in metrics.items():
            if len(groups) > 1:
                paths = sorted({g.path for g in groups})
                self.errors.append(error(
                    "DuplicateMetricName", f"metric name '{name}' is defined by {len(groups)} groups",
                    groups[1].path, groups[1].line, metric_name=name, provenances=paths,
                    metric_group_ids=[g.id for g in groups]))

    def _collect_definitions(self) -> None:
        owners: dict[str, list[tuple[GroupSpec, AttrSpec]]] = {}
        local = {id(g) for g in self.local_groups}
        for g in self.pool:
            prefix = str(g.fields.get("prefix") or "")
            for spec in g.attributes:
                if spec.kind == "id":
                    owners.setdefault(spec.name, []).append((g, spec))
                elif spec.kind == "ref" and spec.prefixed and prefix:
                    self._prefixed.setdefault(f"{prefix}.{spec.name}", (g, spec))
        for name, defs in owners.items():
            self._root_defs[name] = defs[0]
            local_defs = [d for d in defs if id(d[0]) in local]
            if len(local_defs) > 1:
                group, spec = local_defs[1]
                self.errors.append(error(
                    "DuplicateAttributeId",
                    f"attribute '{name}' is defined more than once (groups "
                    f"{', '.join(g.id for g, _ in local_defs)})",
                    spec.path, spec.line, attribute_id=name, group_ids=[g.id for g, _ in local_defs]))

    # --------------------------------------------------------------- roots
    def _root(self, name: str, _depth: int = 0) -> Attribute | None:
        """The registry definition of ``name`` (None when undefined)."""
        if name in self._roots:
            return self._roots[name]
        if name in self._root_defs:
            _group, spec = self._root_defs[name]
            attr = Attribute.from_fields(name, spec.fields, spec.path, spec.line)
            attr.type = spec.fields.get("type")
        elif name in self._prefixed and _depth < 16:
            _group, spec = self._prefixed[name]
            base = self._root(spec.name, _depth + 1)
            if base is None:
                return None
            attr = base.copy()
            attr.name = name
            attr.apply(spec.fields)
            attr.prefix = False
        else:
            return None
        self._roots[name] = attr
        return attr

    # ------------------------------------------------------------- layering
    def _layers(self, group: GroupSpec) -> dict[str, _Entry]:
        """Ordered name -> entry map of a group, after extends/refinement and
        ref_group merging (attributes not yet materialised)."""
        key = id(group)
        if key in self._layer_cache:
            return self._layer_cache[key]
        if key in self._in_progress:
            self.errors.append(error(
                "UnresolvedExtendsRef", f"group '{group.id}' is part of an extends/ref_group cycle",
                group.path, group.line, group_id=group.id, extends_ref=group.extends))
            return {}
        self._in_progress.add(key)
        entries: dict[str, _Entry] = {}
        parent = self._parent(group)
        if parent is not None:
            entries = {k: copy.copy(v) for k, v in self._layers(parent).items()}
        # attribute name -> the ref_group of this group that brought it: two
        # ref_groups bringing the same attribute is Weaver's DuplicateAttributeId
        brought_by: dict[str, AttrSpec] = {}
        for spec in group.attributes:
            if spec.kind == "ref_group":
                target = self.by_id.get(spec.name)
                if target is None or target.type != "attribute_group":
                    self.errors.append(error(
                        "UnresolvedGroupRef", f"group '{group.id}' uses ref_group '{spec.name}' which is not "
                        "an attribute group", spec.path, spec.line, group_id=group.id, group_ref=spec.name))
                    continue
                for name, entry in self._layers(target).items():
                    first = brought_by.setdefault(name, spec)
                    if first is not spec:
                        self._duplicate_via_ref_groups(group, name, first, spec)
                    entries[name] = entries[name].merged_with(entry) if name in entries else entry
                continue
            name = spec.name
            if spec.kind == "ref" and spec.prefixed and group.fields.get("prefix"):
                name = f"{group.fields['prefix']}.{spec.name}"
                new = _Entry("ref", name, {**spec.fields, "prefix": True}, spec)
            else:
                new = _Entry(spec.kind, name, dict(spec.fields), spec)
            entries[name] = entries[name].merged_with(new) if name in entries else new
        self._in_progress.discard(key)
        self._layer_cache[key] = entries
        return entries

    def _duplicate_via_ref_groups(self, group: GroupSpec, name: str, first: AttrSpec, second: AttrSpec) -> None:
        self.errors.append(error(
            "DuplicateAttributeId",
            f"group '{group.id}' gets attribute '{name}' twice: through ref_group '{first.name}' "
            f"(line {first.line}) and ref_group '{second.name}'",
            second.path, second.line, attribute_id=name, group_id=group.id,
            group_refs=[first.name, second.name]))

    def _parent(self, group: GroupSpec) -> GroupSpec | None:
        if group.extends:
            parent = self.by_id.get(group.extends)
            if parent is None:
                self.errors.append(error(
                    "UnresolvedExtendsRef", f"group '{group.id}' extends unknown group '{group.extends}'",
                    group.path, group.line, group_id=group.id, extends_ref=group.extends))
            return parent
        if group.refines:
            base = self._refined_base(*group.refines)
            if base is None:
                kind, ref = group.refines
                self.errors.append(error(
                    "UnresolvedRefinementRef", f"{kind} refinement '{group.id}' refines unknown {kind} '{ref}'",
                    group.path, group.line, group_id=group.id, ref=ref))
            return base
        return None

    def _refined_base(self, kind: str, ref: str) -> GroupSpec | None:
        for g in self.pool:
            if g.type != kind or g.refines is not None:
                continue
            if kind == "span" and (g.signal_key == ref or g.id in (ref, "span." + ref)):
                return g
            if kind == "metric" and g.fields.get("metric_name") == ref:
                return g
            if kind in ("event", "entity") and (g.fields.get("name") == ref or g.id == ref):
                return g
        return None

    # ---------------------------------------------------------- materialise
    def _materialize(self, spec: GroupSpec, local: bool) -> Group | None:
        entries = self._layers(spec)
        attributes = []
        for entry in entries.values():
            attr = self._attribute(spec, entry)
            if attr is not None:
                attributes.append(attr)
        attributes.sort(key=lambda a: a.name)
        fields = self._group_fields(spec)
        if spec.type == "entity" and spec.refines:
            self._check_identity(spec)
        return Group(id=spec.id, type=spec.type, fields=fields, attributes=attributes, path=spec.path,
                     line=spec.line, refines=spec.refines, visibility=spec.visibility,
                     source_format=spec.source_format, signal_key=spec.signal_key, local=local)

    def _attribute(self, group: GroupSpec, entry: _Entry) -> Attribute | None:
        if entry.kind == "id":
            attr = Attribute.from_fields(entry.name, entry.fields, entry.spec.path, entry.spec.line)
            attr.type = entry.fields.get("type")
            return attr
        root_name = entry.spec.name if not entry.fields.get("prefix") else entry.name
        root = self._root(root_name) or self._root(entry.spec.name)
        if root is None:
            self.errors.append(error(
                "UnresolvedAttributeRef",
                f"group '{group.id}' references unknown attribute '{entry.spec.name}'",
                entry.spec.path, entry.spec.line, group_id=group.id, attribute_ref=entry.spec.name))
            return None
        attr = root.copy()
        attr.name = entry.name
        attr.prefix = False
        attr.apply(entry.fields)
        return attr

    def _group_fields(self, spec: GroupSpec) -> dict[str, Any]:
        fields = dict(spec.fields)
        if spec.type == "event" and not fields.get("name") and fields.get("prefix"):
            fields["name"] = fields["prefix"]  # legacy span events named by prefix
        if spec.refines:
            base = self._refined_base(*spec.refines)
            merged = dict(self._group_fields(base)) if base is not None else {}
            annotations = _deep_merge(merged.get("annotations") or {}, fields.get("annotations") or {})
            merged.update({k: v for k, v in fields.items() if k != "annotations"})
            if annotations:
                merged["annotations"] = annotations
            if spec.type in ("span", "event", "entity"):
                merged["name"] = spec.id  # Weaver names a refinement after its id
            fields = merged
        return fields

    def _check_identity(self, spec: GroupSpec) -> None:
        """An entity refinement may not change which attributes identify the
        entity (``EntityRefinementChangedIdentity``)."""
        base = self._refined_base(*spec.refines) if spec.refines else None
        if base is None:
            return
        base_roles = {e.name: e.fields.get("role") for e in self._layers(base).values()}
        for attr in spec.attributes:
            role = attr.fields.get("role")
            if attr.kind != "ref" or role is None:
                continue
            before = base_roles.get(attr.name)
            changed = (before is not None and before != role) or (before is None and role == "identifying")
            if changed:
                self.errors.append(error(
                    "EntityRefinementChangedIdentity",
                    f"entity refinement '{spec.id}' changes the identity of '{spec.refines[1]}' "
                    f"(attribute '{attr.name}' becomes {role})",
                    attr.path, attr.line, refinement_id=spec.id, ref=base.id,
                    attribute_id=attr.name, role=role))

    # -------------------------------------------------------------- imports
    def _exported_ids(self, loaded: LoadedRegistry) -> set[int]:
        """ids of dependency groups visible in ``loaded``'s output: the ones
        it imports from what its dependencies export."""
        selected: set[int] = set()
        for dep in loaded.dependencies:
            candidates = list(dep.groups) + [g for g in self._pool_of(dep) if id(g) in self._exported_ids(dep)]
            for g in candidates:
                if _imported(g, loaded.imports):
                    selected.add(id(g))
        return selected

    def _pool_of(self, loaded: LoadedRegistry) -> list[GroupSpec]:
        return [g for d in _all_dependencies(loaded) for g in d.groups]


def _constraint_errors(attributes: dict[str, Attribute], groups: list[Group]) -> list[Diagnostic]:
    """otelplug's value constraints (``annotations.otelplug.constraints``):
    each definition once, and each ``ref`` that declares its own."""
    out = []

    def check(attr: Attribute, where: str, path: str | None, line: int | None) -> None:
        for kind, message in constraint_diagnostics(attr, where):
            out.append(error(kind, message, path, line, attribute_id=attr.name))

    for name, attr in attributes.items():
        check(attr, f"attribute '{name}'", attr.path, attr.line)
    for group in groups:
        for attr in group.attributes:
            root = attributes.get(attr.name)
            if declared(attr.annotations) is not None and (
                    root is None or declared(attr.annotations) != declared(root.annotations)):
                check(attr, f"group '{group.id}', attribute '{attr.name}'", group.path, group.line)
    return out


def _imported(group: GroupSpec, imports: dict[str, list[str]]) -> bool:
    if group.refines is not None:
        return False
    if group.type == "metric":
        kind, name = "metrics", group.fields.get("metric_name", "")
    elif group.type == "event":
        kind, name = "events", group.fields.get("name", "")
    elif group.type == "entity":
        kind, name = "entities", group.fields.get("name", "")
    elif group.type == "span":
        kind, name = "spans", group.signal_key or group.id.removeprefix("span.")
    elif group.type == "attribute_group" and group.visibility != "registry":
        kind, name = "attribute_groups", group.id
    else:
        return False
    names = {name, group.id, group.id.removeprefix("group.")}
    return any(fnmatch.fnmatchcase(n, pattern) for pattern in imports.get(kind, []) for n in names)


def _all_dependencies(loaded: LoadedRegistry) -> list[LoadedRegistry]:
    out, stack = [], list(loaded.dependencies)
    while stack:
        dep = stack.pop(0)
        out.append(dep)
        stack.extend(dep.dependencies)
    return out


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen, out = set(), []
    for d in diags:
        key = (d.kind, d.message, d.path, d.line)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def load_and_resolve(path: str) -> ResolvedRegistry:
    return resolve_registry(load_registry(path))
