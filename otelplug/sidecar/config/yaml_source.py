"""Read a YAML config keeping the line of every mapping key, and expand
``${env:VAR}``, ``${env:VAR:-default}`` and ``${VAR}``, with ``$$`` for a
literal ``$`` (the Collector's rules).

A value that is exactly one reference takes the type the variable's text
parses to (``${env:PORT}`` with PORT=4317 is the integer 4317), as in the
Collector; inside a longer string it is text.

A config file is input the sidecar must survive (it is re-read on SIGHUP
while data flows), so everything wrong with it becomes a ConfigErrors with
file:line, never a traceback: undecodable bytes, tags that would build
Python objects (only SafeLoader's plain types exist here), duplicate keys
(YAML would silently keep the last), and documents built to exhaust memory
or the stack: the size, the nesting depth and what aliases expand to are
checked on the parser's event stream, which is iterative, before anything
recursive (composing, line tables, env expansion) walks the document.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import yaml

from .errors import ConfigError, ConfigErrors

# Far above any real config (the Collector's own examples are a few KiB and
# nest < 10 levels) and far below what hurts: 100,000 nodes build and walk
# in well under a second.
MAX_CONFIG_BYTES = 4 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000

_REF = re.compile(r"\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_BAD_REF = re.compile(r"\$\{(?!(?:env:)?[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})[^}]*\}")


@dataclass
class Loaded:
    """A parsed config document and what is known about where it came from."""
    data: dict
    lines: dict                       # key path -> 1-based line
    warnings: list[str] = field(default_factory=list)
    unset: dict = field(default_factory=dict)   # key path -> unset variable it referenced


def _fail(message: str, filename: str, line: int | None = None, path=()) -> ConfigErrors:
    where = f"{filename}:{line}" if line else filename
    return ConfigErrors([ConfigError(tuple(path), message, where)])


def _yaml_error(exc: yaml.YAMLError, text: str, filename: str) -> ConfigErrors:
    if isinstance(exc, yaml.reader.ReaderError):     # a character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        return _fail(f"invalid YAML: character #x{exc.character:04x} is not allowed "
                     "(control characters and other special characters must be quoted escapes)",
                     filename, line)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
        problem += " (only plain YAML is accepted: mappings, lists, strings, numbers, booleans)"
    elif context:
        problem = f"{problem} ({context})"
    return _fail(f"invalid YAML: {problem}", filename, mark.line + 1 if mark else None)


def _check_shape(text: str, filename: str) -> None:
    """Reject documents too deep or whose aliases expand too far, from the
    parser's events alone.  Each open collection counts its nodes and the
    depth below it; an anchored one remembers both, so an alias adds what
    it would expand to without expanding it."""
    anchors: dict[str, tuple[int, int]] = {}      # anchor -> (nodes, height)
    stack: list[list] = []                        # [anchor, nodes, height]
    total = 0

    def add(nodes, height, event):
        nonlocal total
        total += nodes
        depth = len(stack) + height
        if total > MAX_NODES:
            why = (" (aliases referring to aliases multiply; this looks like an alias bomb)"
                   if isinstance(event, yaml.AliasEvent) else "")
            raise _fail(f"invalid YAML: the document expands to more than {MAX_NODES:,} nodes{why}",
                        filename, event.start_mark.line + 1)
        if depth > MAX_DEPTH:
            raise _fail(f"invalid YAML: nesting deeper than {MAX_DEPTH} levels", filename,
                        event.start_mark.line + 1)
        if stack:
            stack[-1][1] += nodes
            stack[-1][2] = max(stack[-1][2], height)

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            add(0, 1, event)          # depth check before descending
            stack.append([event.anchor, 1, 0])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, nodes, height = stack.pop()
            if anchor:
                anchors[anchor] = (nodes, height + 1)
            if stack:
                stack[-1][1] += nodes
                stack[-1][2] = max(stack[-1][2], height + 1)
            total += 1
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                anchors[event.anchor] = (1, 0)
            add(1, 0, event)
        elif isinstance(event, yaml.AliasEvent):
            nodes, height = anchors.get(event.anchor, (1, 0))   # undefined: the composer says so
            add(nodes, height, event)


def _walk(node, path, lines, seen, errors, filename):
    """Record the line of every key and item; report duplicate keys once
    per mapping node (an aliased node is walked again at each use)."""
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key == "<<":           # merge key: later keys override on purpose
                continue
            if key in first and id(node) not in seen:
                errors.append(ConfigError(path + (key,),
                                          f"duplicate key {key!r} (first at line {first[key]}); "
                                          "YAML would silently keep only the last",
                                          f"{filename}:{line}"))
            first.setdefault(key, line)
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines, seen, errors, filename)
        seen.add(id(node))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (str(i),)] = item.start_mark.line + 1
            _walk(item, path + (str(i),), lines, seen, errors, filename)


def load_text(text: str, filename: str = "<config>", environ=None) -> Loaded:
    """Parse config text.  Raises ConfigErrors naming file:line for
    anything wrong with the document itself (syntax, tags, duplicate keys,
    size, depth, aliases, malformed references)."""
    if len(text) > MAX_CONFIG_BYTES:
        raise _fail(f"the config is larger than {MAX_CONFIG_BYTES >> 20} MiB", filename)
    loader = None
    try:
        _check_shape(text, filename)
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return Loaded({}, {})
        lines: dict = {(): node.start_mark.line + 1}
        errors: list[ConfigError] = []
        _walk(node, (), lines, set(), errors, filename)
        if errors:
            raise ConfigErrors(errors)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, filename) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise _fail("the configuration must be a mapping", filename, 1)
    out = Loaded(data, lines)
    errors = []
    env = os.environ if environ is None else environ
    out.data = _expand(data, (), env, out, filename, errors)
    if errors:
        raise ConfigErrors(errors)
    return out


def _expand(value, path, env, out: Loaded, filename, errors):
    if isinstance(value, dict):
        return {k: _expand(v, path + (str(k),), env, out, filename, errors)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, path + (str(i),), env, out, filename, errors)
                for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    line = out.lines.get(path)
    where = f"{filename}:{line}" if line else filename
    bad = _BAD_REF.search(value)
    if bad:
        errors.append(ConfigError(path, f"invalid reference {bad.group(0)!r}: use ${{env:NAME}} "
                                  "or ${env:NAME:-default}", where))
        return value

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        # the Collector's rule (empty, with a warning); if the empty value
        # is then invalid, the error names the variable too (out.unset)
        out.unset[path] = name
        out.warnings.append(f"{'::'.join(path)}: environment variable {name} is not set; "
                            f"using \"\" ({where})")
        return ""

    whole = _REF.fullmatch(value)
    expanded = _REF.sub(sub, value)
    if whole and whole.group(0) != "$$":
        try:  # a whole-value reference takes the type of what it expands to
            typed = yaml.safe_load(expanded) if expanded else None
        except yaml.YAMLError:
            return expanded
        return typed if isinstance(typed, (int, float, bool, str)) or typed is None else expanded
    return expanded


def load_file(path: str, environ=None) -> Loaded:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise _fail(f"cannot read config: {exc.strerror}", str(path)) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise _fail(f"the config is larger than {MAX_CONFIG_BYTES >> 20} MiB", str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(f"the config is not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {column} "
                    "(binary, or another encoding such as Latin-1: save it as UTF-8)",
                    str(path), line) from None
    return load_text(text, str(path), environ)
