"""YAML reading that remembers where each mapping came from.

Registries are written by hand; every diagnostic must point at ``file:line``.
PyYAML drops positions once objects are constructed, so mappings are built as
:class:`LineDict` (a plain dict plus the line of the mapping and of each key).

The loader follows YAML 1.2 for booleans (only ``true``/``false``), as Weaver
(serde_yaml) does: with YAML 1.1 an enum value or an example such as ``on`` or
``no`` would silently become a boolean.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import SemconvError, error

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict):
    """A dict that knows the 1-based line of its mapping and of its keys."""

    __slots__ = ("line", "key_lines")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.line = 0
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    pass


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            key = str(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)

# YAML 1.2 core-schema booleans: drop the 1.1 yes/no/on/off forms.
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml_text(text: str, path: str) -> Any:
    """Parse YAML text; syntax errors become a diagnostic with file:line."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - safe loader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SemconvError(error("InvalidYaml", f"invalid YAML: {exc.problem or exc}", path, line)) from None
    except yaml.YAMLError as exc:
        raise SemconvError(error("InvalidYaml", f"invalid YAML: {exc}", path)) from None


def load_yaml_file(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise SemconvError(error("RegistryNotFound", f"cannot read file: {exc.strerror}", path)) from None
    except UnicodeDecodeError:
        raise SemconvError(error("InvalidYaml", "file is not valid UTF-8", path)) from None
    return load_yaml_text(text, path)


def line_of(value: Any, key: Any = None) -> int | None:
    """Line of a mapping (or of one of its keys) when known."""
    if isinstance(value, LineDict):
        return value.line_of(key) if key is not None else value.line
    return None
