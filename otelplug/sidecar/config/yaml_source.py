"""Read a YAML config keeping the line of every mapping key, and expand
``${env:VAR}``, ``${env:VAR:-default}`` and ``${VAR}``, with ``$$`` for a
literal ``$`` (the Collector's rules).

A value that is exactly one reference takes the type the variable's text
parses to (``${env:PORT}`` with PORT=4317 is the integer 4317), as in the
Collector; inside a longer string it is text.
"""
from __future__ import annotations

import os
import re

import yaml

from .errors import ConfigError, ConfigErrors

_REF = re.compile(r"\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_BAD_REF = re.compile(r"\$\{(?!(?:env:)?[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})[^}]*\}")


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records the line of each mapping key by path."""


def _compose_lines(node, path, lines):
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _compose_lines(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (str(i),)] = item.start_mark.line + 1
            _compose_lines(item, path + (str(i),), lines)


def load_text(text: str, filename: str = "<config>", environ=None):
    """Parse config text: (data, lines, warnings).  Raises ConfigErrors
    naming file:line for YAML syntax errors and malformed references."""
    try:
        node = yaml.compose(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark else filename
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigErrors([ConfigError((), f"invalid YAML: {problem}", where)]) from None
    if node is None:
        return {}, {}, []
    lines: dict = {(): node.start_mark.line + 1}
    _compose_lines(node, (), lines)
    data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise ConfigErrors([ConfigError((), "the configuration must be a mapping", f"{filename}:1")])
    warnings: list[str] = []
    errors: list[ConfigError] = []
    env = os.environ if environ is None else environ
    data = _expand(data, (), env, lines, filename, warnings, errors)
    if errors:
        raise ConfigErrors(errors)
    return data, lines, warnings


def _expand(value, path, env, lines, filename, warnings, errors):
    if isinstance(value, dict):
        return {k: _expand(v, path + (str(k),), env, lines, filename, warnings, errors)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, path + (str(i),), env, lines, filename, warnings, errors)
                for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    bad = _BAD_REF.search(value)
    if bad:
        line = lines.get(path)
        errors.append(ConfigError(path, f"invalid reference {bad.group(0)!r}: use ${{env:NAME}} "
                                  "or ${env:NAME:-default}", f"{filename}:{line}" if line else None))
        return value

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        warnings.append(f"{'::'.join(path)}: environment variable {name} is not set; using \"\"")
        return ""

    whole = _REF.fullmatch(value)
    out = _REF.sub(sub, value)
    if whole and whole.group(0) != "$$":
        try:  # a whole-value reference takes the type of what it expands to
            typed = yaml.safe_load(out) if out else None
        except yaml.YAMLError:
            return out
        return typed if isinstance(typed, (int, float, bool, str)) or typed is None else out
    return out


def load_file(path: str, environ=None):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigErrors([ConfigError((), f"cannot read config: {exc.strerror}", str(path))]) from None
    return load_text(text, str(path), environ)
