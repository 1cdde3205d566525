"""Loading a registry folder: files of both formats, manifest, dependencies.

``load_registry(path)`` walks the folder, parses every YAML file (v1 or v2),
reads ``manifest.yaml`` (or the legacy ``registry_manifest.yaml``) and loads
the registries it depends on, recursively.  Nothing is resolved here; the
result is handed to :mod:`.resolver`.

Paths: each group remembers the path of its file as *the registry path the
user gave, joined with the file's path inside the registry* (what Weaver
calls provenance).  A dependency's ``registry_path`` is looked up like Weaver
does, relative to the current directory, and then, for convenience,
relative to the manifest's folder and its parents.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .errors import Diagnostic, SemconvError, error
from .model import GroupSpec, Manifest
from .parse_common import FileContext, line
from .parse_v1 import parse_v1_groups
from .parse_resolved import is_resolved_document, parse_resolved_document
from .parse_v2 import is_v2_document, parse_v2_document
from .yamlsrc import load_yaml_file

MANIFEST_NAMES = ("manifest.yaml", "registry_manifest.yaml")
IMPORT_KINDS = ("metrics", "events", "entities", "spans", "attribute_groups")


@dataclass
class LoadedRegistry:
    """A registry folder parsed but not resolved."""

    path: str
    manifest: Manifest | None
    groups: list[GroupSpec]
    imports: dict[str, list[str]]
    dependencies: list["LoadedRegistry"] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    file_count: int = 0

    @property
    def name(self) -> str:
        if self.manifest and self.manifest.name:
            return self.manifest.name
        return os.path.basename(os.path.normpath(self.path))


def load_registry(path: str, *, _stack: tuple[str, ...] = ()) -> LoadedRegistry:
    """Parse the registry at ``path`` and its dependencies.

    Raises :class:`SemconvError` with every error found; warnings are kept
    on the returned object.
    """
    if not os.path.exists(path):
        raise SemconvError(error("RegistryNotFound", f"registry path does not exist: {path}", path))
    if os.path.isfile(path):
        files = [(path, path)]
        root = os.path.dirname(path) or "."
    else:
        root = path
        files = list(_discover(path))
    real = os.path.realpath(root)
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    manifest = _load_manifest(root, errors)
    if manifest is not None and manifest.resolved_registry_uri:
        # a published registry: its content is the resolved file it names
        resolved = os.path.join(root, str(manifest.resolved_registry_uri))
        files = [(resolved, resolved)]
    if real in _stack:
        chain = " -> ".join(list(_stack) + [real])
        raise SemconvError(error("CircularDependency", f"registry dependency cycle: {chain}", path))

    groups: list[GroupSpec] = []
    imports: dict[str, list[str]] = {}

    for display, actual in files:
        ctx = FileContext(display)
        try:
            doc = load_yaml_file(actual)
        except SemconvError as exc:
            errors.extend(exc.diagnostics)
            continue
        groups.extend(_parse_document(doc, ctx))
        _merge_imports(imports, doc, ctx)
        for diag in ctx.diagnostics:
            (errors if diag.severity == "error" else warnings).append(diag)

    dependencies: list[LoadedRegistry] = []
    if manifest is not None:
        for dep in manifest.dependencies:
            dep_path = _find_dependency(dep, root)
            if dep_path is None:
                errors.append(error(
                    "RegistryNotFound",
                    f"dependency '{dep.get('name') or dep.get('schema_url')}' not found at "
                    f"registry_path {dep.get('registry_path')!r}",
                    manifest.path, dep.get("__line__")))
                continue
            try:
                dependencies.append(load_registry(dep_path, _stack=_stack + (real,)))
            except SemconvError as exc:
                errors.extend(exc.diagnostics)
    if errors:
        raise SemconvError(errors)
    return LoadedRegistry(path=path, manifest=manifest, groups=groups, imports=imports,
                          dependencies=dependencies, warnings=warnings, file_count=len(files))


def _discover(root: str):
    """Yield (display path, real path) of every YAML file, sorted."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith((".yaml", ".yml")) or name in MANIFEST_NAMES:
                continue
            actual = os.path.join(dirpath, name)
            rel = os.path.relpath(actual, root)
            yield os.path.join(root, rel), actual


def _parse_document(doc: Any, ctx: FileContext) -> list[GroupSpec]:
    if doc is None:
        return []
    if not isinstance(doc, dict):
        ctx.report("InvalidSemConvSpec", "a registry file must be a mapping", None)
        return []
    if is_v2_document(doc):
        return parse_v2_document(doc, ctx)
    if is_resolved_document(doc):
        return parse_resolved_document(doc, ctx)
    fmt = doc.get("file_format")
    if fmt is not None and fmt != "definition/1":
        ctx.report("InvalidSemConvSpec", f"unsupported file_format {fmt!r} (expected definition/2)",
                   line(doc, "file_format"))
        return []
    if "groups" in doc:
        return parse_v1_groups(doc["groups"], ctx, doc)
    if "imports" in doc:
        return []
    ctx.report("InvalidSemConvSpec", "file has neither 'groups' (v1) nor 'file_format: definition/2' (v2)",
               line(doc))
    return []


def _merge_imports(imports: dict[str, list[str]], doc: Any, ctx: FileContext) -> None:
    if not isinstance(doc, dict) or not doc.get("imports"):
        return
    raw = doc["imports"]
    if not isinstance(raw, dict):
        ctx.report("InvalidSemConvSpec", "'imports' must be a mapping", line(doc, "imports"))
        return
    for kind, patterns in raw.items():
        if kind not in IMPORT_KINDS:
            ctx.report("InvalidSemConvSpec", f"unknown import kind {kind!r}", line(raw, kind))
            continue
        imports.setdefault(kind, []).extend(str(p) for p in (patterns or []))


def _load_manifest(root: str, errors: list[Diagnostic]) -> Manifest | None:
    for name in MANIFEST_NAMES:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            break
    else:
        return None
    try:
        doc = load_yaml_file(path)
    except SemconvError as exc:
        errors.extend(exc.diagnostics)
        return None
    if not isinstance(doc, dict):
        errors.append(error("InvalidRegistryManifest", "manifest must be a mapping", path))
        return None
    deps = []
    for raw in doc.get("dependencies") or []:
        if not isinstance(raw, dict) or not raw.get("registry_path"):
            errors.append(error("InvalidRegistryManifest", "each dependency needs a registry_path", path,
                                line(raw) or line(doc, "dependencies")))
            continue
        dep = dict(raw)
        dep["__line__"] = line(raw)
        deps.append(dep)
    return Manifest(
        name=doc.get("name"), description=doc.get("description"),
        semconv_version=doc.get("semconv_version"), schema_url=doc.get("schema_url"),
        stability=doc.get("stability"), dependencies=deps,
        resolved_registry_uri=doc.get("resolved_registry_uri"), path=path,
    )


def _find_dependency(dep: dict[str, Any], root: str) -> str | None:
    rel = str(dep["registry_path"])
    if os.path.isabs(rel):
        return rel if os.path.exists(rel) else None
    candidates = [rel, os.path.join(root, rel)]
    # Weaver's fixtures write paths relative to the crate (``data/...``); also
    # try each parent of the registry, with and without the first component.
    parts = rel.replace("\\", "/").split("/")
    parent = os.path.abspath(root)
    while True:
        candidates.append(os.path.join(parent, rel))
        if len(parts) > 1:
            candidates.append(os.path.join(parent, *parts[1:]))
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    for cand in candidates:
        if os.path.isdir(cand) or os.path.isfile(cand):
            return cand
    return None
