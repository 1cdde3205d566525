"""Decode plain YAML data into typed config dataclasses.

Every component declares its config as a dataclass whose defaults are the
component's default config.  ``decode`` fills one from YAML data, rejecting
unknown keys by name and wrong types with the field's ``a::b::c`` path, and
collects every error instead of stopping at the first.  A dataclass may
define ``validate(self) -> list`` for cross-field rules; each item is a
message, or ``(subpath, message)`` to point at a field.
"""
from __future__ import annotations

import dataclasses
import difflib
import keyword
import re
import types
import typing
from typing import Any, Literal, Union

from .errors import ErrorList


class Duration(float):
    """Seconds, written in YAML like the Collector: ``5s``, ``200ms``,
    ``1m30s``, ``1h``, ``250us``, ``100ns``."""

    _UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    _PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")

    @classmethod
    def parse(cls, text: str) -> "Duration":
        text = text.strip()
        if text in ("0", ""):
            return cls(0.0)
        pos, total = 0, 0.0
        for m in cls._PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * cls._UNITS[m.group(2)]
            pos = m.end()
        if pos != len(text) or pos == 0:
            raise ValueError(f"invalid duration {text!r}: use a number with a unit, like 5s or 200ms")
        return cls(total)


def did_you_mean(word: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or nothing."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_key(key: str, valid) -> str:
    # the Collector's wording, one error per key so each points at its own line
    return f"invalid keys: {key}{did_you_mean(key, valid)} (valid keys: {', '.join(sorted(valid))})"


def _type_name(tp) -> str:
    if tp is Duration:
        return "duration"
    return getattr(tp, "__name__", str(tp))


def _decode_value(tp, value, path, errs: ErrorList):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _decode_value(inner[0], value, path, errs)
        for a in inner:  # first member that decodes without error
            trial = ErrorList()
            out = _decode_value(a, value, path, trial)
            if not trial.errors:
                return out
        errs.add(path, f"expected one of {', '.join(_type_name(a) for a in inner)}, got {value!r}")
        return None
    if origin is Literal:
        if value not in args:
            errs.add(path, f"must be one of {', '.join(repr(a) for a in args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return decode(tp, value, path, errs)
    if origin in (list, tuple) or tp in (list, tuple):
        if value is None:
            return []
        if not isinstance(value, list):
            errs.add(path, f"expected a list, got {type(value).__name__} {value!r}")
            return []
        item = args[0] if args else Any
        return [_decode_value(item, v, path + (str(i),), errs) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            errs.add(path, f"expected a mapping, got {type(value).__name__} {value!r}")
            return {}
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _decode_value(vt, v, path + (str(k),), errs) for k, v in value.items()}
    if tp is Duration:
        if isinstance(value, str):
            try:
                return Duration.parse(value)
            except ValueError as exc:
                errs.add(path, str(exc))
                return Duration(0)
        errs.add(path, f"invalid duration {value!r}: use a number with a unit, like 5s or 200ms")
        return Duration(0)
    if tp is bool:
        if not isinstance(value, bool):
            errs.add(path, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errs.add(path, f"expected an integer, got {value!r}")
            return 0
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errs.add(path, f"expected a number, got {value!r}")
            return 0.0
        return float(value)
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            errs.add(path, f"expected a string, got {value!r}")
            return ""
        return str(value)
    return value


def config_key(name: str) -> str:
    """The config key of a dataclass field: ``for_`` is written ``for``."""
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


def decode(cls, data, path=(), errs: ErrorList | None = None):
    """A ``cls`` instance from ``data`` (a mapping or None for all defaults)."""
    own = errs is None
    errs = errs or ErrorList()
    path = tuple(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errs.add(path, f"expected a mapping, got {type(data).__name__} {data!r}")
        data = {}
    errors_before = len(errs.errors)
    hints = typing.get_type_hints(cls)
    # a field named after a Python keyword plus "_" (``for_``) is written
    # without the "_" in config (``for:``, as in Prometheus rules)
    fields = {config_key(f.name): f for f in dataclasses.fields(cls) if f.init}
    for key in sorted(str(k) for k in data if k not in fields):
        errs.add(path, unknown_key(key, fields), at=path + (key,))
    kwargs = {}
    for key, f in fields.items():
        if key in data:
            kwargs[f.name] = _decode_value(hints[f.name], data[key], path + (key,), errs)
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field without default
        errs.add(path, str(exc))
        obj = None
    # cross-field rules only make sense once the fields themselves decoded
    if obj is not None and hasattr(obj, "validate") and len(errs.errors) == errors_before:
        for item in obj.validate() or []:
            sub, msg = item if isinstance(item, tuple) else ((), item)
            errs.add(path + tuple(sub), msg)
    if own:
        errs.raise_if_any()
    return obj
