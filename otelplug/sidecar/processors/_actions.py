"""The Collector's attribute actions, shared by the attributes and
resource processors: insert, update, upsert, delete, hash, extract, convert.

Values come from ``value`` or ``from_attribute``; ``delete`` and ``hash``
also take a regex ``pattern`` over keys.  ``hash`` writes the SHA-256 hex
digest of the value's text (the Collector moved from SHA-1 to SHA-256).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

ACTIONS = ("insert", "update", "upsert", "delete", "hash", "extract", "convert")


@dataclass
class Action:
    """``key``: the attribute the action works on.

    ``action``: insert (only if absent), update (only if present), upsert,
    delete, hash (SHA-1 of the value), extract (regexp named groups into new
    attributes) or convert (to ``converted_type``).

    ``value``: the value insert, update and upsert write.

    ``from_attribute``: take the value from this attribute instead of ``value``.

    ``pattern``: a regexp: the keys delete and hash act on (instead of
    ``key``), or the named groups extract writes.

    ``converted_type``: the type convert turns the value into.
    """
    key: str = ""
    action: Literal["insert", "update", "upsert", "delete", "hash", "extract", "convert"] | None = None
    value: Any = None
    from_attribute: str = ""
    pattern: str = ""
    converted_type: Literal["int", "double", "string", ""] = ""

    def validate(self):
        errs = []
        if self.action is None:
            return ["missing action (one of " + ", ".join(ACTIONS) + ")"]
        if not self.key and not (self.pattern and self.action in ("delete", "hash")):
            errs.append("missing key" + (" or pattern" if self.action in ("delete", "hash") else ""))
        if self.action in ("insert", "update", "upsert"):
            if (self.value is None) == (not self.from_attribute):
                errs.append(f"{self.action} needs exactly one of value or from_attribute")
        if self.action == "extract":
            if not self.pattern:
                errs.append("extract needs a pattern with named groups")
            else:
                try:
                    if not re.compile(self.pattern).groupindex:
                        errs.append("extract pattern has no named groups")
                except re.error as exc:
                    errs.append(f"invalid pattern: {exc}")
        elif self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                errs.append(f"invalid pattern: {exc}")
        if self.action == "convert" and not self.converted_type:
            errs.append("convert needs converted_type (int, double or string)")
        return errs


def _hash(v) -> str:
    text = v if isinstance(v, str) else repr(v) if not isinstance(v, bool) else str(v).lower()
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _convert(v, to: str):
    try:
        if to == "int":
            return int(float(v)) if isinstance(v, str) else int(v)
        if to == "double":
            return float(v)
        return v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
    except (TypeError, ValueError):
        return v   # as the Collector: values that do not convert stay as they are


class CompiledActions:
    def __init__(self, actions: list[Action]):
        self.actions = [(a, re.compile(a.pattern) if a.pattern else None) for a in actions]

    def apply(self, attrs: dict) -> None:
        for a, rx in self.actions:
            act = a.action
            if act in ("insert", "update", "upsert"):
                if a.from_attribute:
                    if a.from_attribute not in attrs:
                        continue
                    val = attrs[a.from_attribute]
                else:
                    val = tuple(a.value) if isinstance(a.value, list) else a.value
                present = a.key in attrs
                if (act == "insert" and not present) or (act == "update" and present) or act == "upsert":
                    attrs[a.key] = val
            elif act == "delete":
                if a.key:
                    attrs.pop(a.key, None)
                if rx is not None:
                    for k in [k for k in attrs if rx.fullmatch(k)]:
                        del attrs[k]
            elif act == "hash":
                keys = [a.key] if a.key in attrs else []
                if rx is not None:
                    keys += [k for k in attrs if rx.fullmatch(k) and k != a.key]
                for k in keys:
                    attrs[k] = _hash(attrs[k])
            elif act == "extract":
                v = attrs.get(a.key)
                if isinstance(v, str):
                    m = rx.search(v)
                    if m:
                        attrs.update({k: s for k, s in m.groupdict().items() if s is not None})
            elif act == "convert":
                if a.key in attrs:
                    attrs[a.key] = _convert(attrs[a.key], a.converted_type)
