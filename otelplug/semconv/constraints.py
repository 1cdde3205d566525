"""Value constraints: otelplug's documented extension of the registry format.

Weaver types an attribute (``int``, ``string[]``...) but cannot say that a
confidence lies in [0, 1] or that a name is never empty.  otelplug reads
such constraints from the attribute's ``annotations``, which Weaver's
schema accepts as a free-form object (``"annotations": {"type": "object",
"additionalProperties": true}`` in semconv.schema.json) and ignores, so a
registry that uses them stays valid for ``weaver registry check``::

    - id: consensus.confidence
      type: double
      brief: ...
      annotations:
        otelplug:
          constraints:
            minimum: 0              # numbers (int, double and their arrays,
            maximum: 1              #   element-wise): inclusive bounds,
            # exclusive_minimum: 0  #   or exclusive ones
            # exclusive_maximum: 1
            # min_length: 1         # strings (and string[] elements), in characters
            # max_length: 100
            # pattern: '^[a-z_]+$'  # Python `re`, must match the whole value
            # min_items: 1          # arrays: at least this many elements

A ``ref`` may carry its own ``annotations.otelplug.constraints``; they replace
the definition's for that signal (the ``ref`` override rule).

Checked where: ``otelplug semconv check`` validates the declarations (a
constraint the type cannot have, a bound of the wrong type, min > max, a
pattern that does not compile, an example that violates them); live-check,
the sidecar's ``semconv`` processor and the generated emitters check values
and report a violation with one of :data:`FINDING_IDS`, whose message names
the signal, the field, the rule and the value::

    consensus.proposed: confidence must be between 0 and 1, got 1.7
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

#: finding ids of constraint violations (level: violation)
VALUE_OUT_OF_RANGE = "value_out_of_range"
STRING_LENGTH_OUT_OF_RANGE = "string_length_out_of_range"
PATTERN_MISMATCH = "pattern_mismatch"
ARRAY_TOO_SHORT = "array_too_short"
FINDING_IDS = (VALUE_OUT_OF_RANGE, STRING_LENGTH_OUT_OF_RANGE, PATTERN_MISMATCH, ARRAY_TOO_SHORT)

NUMERIC_KEYS = ("minimum", "maximum", "exclusive_minimum", "exclusive_maximum")
STRING_KEYS = ("min_length", "max_length", "pattern")
ARRAY_KEYS = ("min_items",)
ALL_KEYS = NUMERIC_KEYS + STRING_KEYS + ARRAY_KEYS


@dataclass(frozen=True)
class Constraints:
    """The constraints of one attribute (None: not constrained that way)."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    min_items: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ALL_KEYS if getattr(self, k) is not None}

    # -------------------------------------------------------------- words
    def range_text(self) -> str:
        """``between 0 and 1``, ``greater than 0``, ``at most 100``..."""
        low = (f"at least {_num(self.minimum)}" if self.minimum is not None else
               f"greater than {_num(self.exclusive_minimum)}" if self.exclusive_minimum is not None else None)
        high = (f"at most {_num(self.maximum)}" if self.maximum is not None else
                f"less than {_num(self.exclusive_maximum)}" if self.exclusive_maximum is not None else None)
        if self.minimum is not None and self.maximum is not None:
            return f"between {_num(self.minimum)} and {_num(self.maximum)}"
        return " and ".join(p for p in (low, high) if p)

    def length_text(self) -> str:
        lo, hi = self.min_length, self.max_length
        if lo is not None and hi is not None:
            return f"between {lo} and {hi} characters long"
        if lo == 1:
            return "non-empty"
        return f"at least {lo} characters long" if lo is not None else f"at most {hi} characters long"

    def items_text(self) -> str:
        return "non-empty" if self.min_items == 1 else f"at least {self.min_items} items long"


def _num(value: float | None) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else repr(value)


# -------------------------------------------------------------- reading

def declared(annotations: Any) -> Any:
    """The raw ``annotations.otelplug.constraints`` value (None if absent)."""
    if not isinstance(annotations, dict):
        return None
    own = annotations.get("otelplug")
    return own.get("constraints") if isinstance(own, dict) else None


def parse_constraints(raw: Any, type_: Any, report: Callable[[str], None]) -> Constraints | None:
    """Validate a declaration against the attribute's type.  ``report``
    gets one message per problem; what is valid is kept."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        report(f"otelplug.constraints must be a mapping, got {type(raw).__name__}")
        return None
    base = type_ if isinstance(type_, str) else ("string" if _enum_of_strings(type_) else "int")
    base = base[len("template["):-1] if base.startswith("template[") else base
    is_array = base.endswith("[]")
    scalar = base[:-2] if is_array else base
    allowed: tuple[str, ...] = ()
    if scalar in ("int", "double"):
        allowed += NUMERIC_KEYS
    if scalar == "string":
        allowed += STRING_KEYS
    if is_array:
        allowed += ARRAY_KEYS
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in ALL_KEYS:
            report(f"unknown constraint {key!r} (known: {', '.join(ALL_KEYS)})")
        elif key not in allowed:
            report(f"constraint {key!r} does not apply to type {base!r}")
        elif key in NUMERIC_KEYS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                report(f"constraint {key!r} must be a finite number, got {value!r}")
            elif scalar == "int" and not float(value).is_integer():
                report(f"constraint {key!r} of an int attribute must be a whole number, got {value!r}")
            else:
                values[key] = value
        elif key == "pattern":
            if not isinstance(value, str):
                report(f"constraint 'pattern' must be a string, got {value!r}")
                continue
            try:
                re.compile(value)
            except re.error as exc:
                report(f"constraint 'pattern' {value!r} is not a valid regular expression: {exc}")
                continue
            values[key] = value
        else:  # lengths and item counts
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                report(f"constraint {key!r} must be a whole number >= 0, got {value!r}")
            else:
                values[key] = value
    _check_consistency(values, report)
    return Constraints(**values) if values else None


def attribute_constraints(attr: Any) -> Constraints | None:
    """The (valid part of the) constraints of a resolved attribute."""
    return parse_constraints(declared(attr.annotations), attr.type, lambda _message: None)


def constraint_diagnostics(attr: Any, where: str) -> list[tuple[str, str]]:
    """``(kind, message)`` problems of an attribute's declaration and of its
    examples against it; ``where`` names the attribute (and its group)."""
    raw = declared(attr.annotations)
    if raw is None:
        return []
    problems: list[tuple[str, str]] = []
    parsed = parse_constraints(raw, attr.type, lambda m: problems.append(("InvalidConstraint", f"{where}: {m}")))
    if parsed is not None and attr.examples is not None:
        examples = attr.examples if isinstance(attr.examples, list) else [attr.examples]
        if isinstance(attr.type, str) and attr.type.endswith("[]") and examples and not isinstance(examples[0], list):
            examples = [examples]
        for example in examples:
            found = check_value(parsed, example)
            if found is not None:
                problems.append(("ExampleViolatesConstraint", f"{where}: example {found.text}"))
    return problems


def _enum_of_strings(type_: Any) -> bool:
    members = type_.get("members") if isinstance(type_, dict) else None
    return bool(members) and all(isinstance(m.get("value"), str) for m in members or ())


def _check_consistency(values: dict[str, Any], report: Callable[[str], None]) -> None:
    for inclusive, exclusive in (("minimum", "exclusive_minimum"), ("maximum", "exclusive_maximum")):
        if inclusive in values and exclusive in values:
            report(f"constraints {inclusive!r} and {exclusive!r} exclude each other")
    low = values.get("minimum", values.get("exclusive_minimum"))
    high = values.get("maximum", values.get("exclusive_maximum"))
    if low is not None and high is not None and (low > high or (low == high and (
            "exclusive_minimum" in values or "exclusive_maximum" in values))):
        report(f"the constraints allow no value (lower bound {low}, upper bound {high})")
    if values.get("min_length") is not None and values.get("max_length") is not None \
            and values["min_length"] > values["max_length"]:
        report(f"min_length {values['min_length']} is greater than max_length {values['max_length']}")


# ------------------------------------------------------------- checking

def short_field(attribute: str, signal: str | None) -> str:
    """An attribute as a field of its signal: ``consensus.confidence`` of
    event ``consensus.proposed`` is ``confidence`` (the namespace they
    share is dropped); otherwise the full name."""
    if signal:
        namespace = signal.split(".", 1)[0] + "."
        if attribute.startswith(namespace) and len(attribute) > len(namespace):
            return attribute[len(namespace):]
    return attribute


@dataclass(frozen=True)
class Violation:
    finding_id: str
    #: ``must be between 0 and 1, got 1.7``: the rule and the value
    text: str

    def message(self, signal: str | None, field: str) -> str:
        return f"{signal}: {field} {self.text}" if signal else f"{field} {self.text}"


def check_value(c: Constraints, value: Any) -> Violation | None:
    """The first constraint ``value`` breaks (arrays: element-wise after
    their own item count), or None."""
    if isinstance(value, (list, tuple)):
        if c.min_items is not None and len(value) < c.min_items:
            return Violation(ARRAY_TOO_SHORT, f"must be {c.items_text()}, got {len(value)} items")
        for index, item in enumerate(value):
            found = _check_scalar(c, item)
            if found is not None:
                return Violation(found.finding_id, found.text.replace(", got", f", got [{index}] =", 1))
        return None
    return _check_scalar(c, value)


def predicate(c: Constraints) -> Callable[[Any], bool]:
    """A fast ``value meets c`` test for scalars of the constrained type
    (anything else, arrays included, goes through :func:`check_value`):
    what the sidecar's cache asks for every constrained value it sees."""
    low, high = c.minimum, c.maximum
    xlow, xhigh = c.exclusive_minimum, c.exclusive_maximum
    lo_len, hi_len = c.min_length, c.max_length
    pattern = re.compile(c.pattern) if c.pattern is not None else None

    def meets(value: Any) -> bool:
        kind = type(value)
        if kind is float or kind is int:
            return ((low is None or value >= low) and (high is None or value <= high)
                    and (xlow is None or value > xlow) and (xhigh is None or value < xhigh))
        if kind is str:
            return ((lo_len is None or len(value) >= lo_len) and (hi_len is None or len(value) <= hi_len)
                    and (pattern is None or pattern.fullmatch(value) is not None))
        return check_value(c, value) is None
    return meets


def _check_scalar(c: Constraints, value: Any) -> Violation | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if ((c.minimum is not None and value < c.minimum)
                or (c.maximum is not None and value > c.maximum)
                or (c.exclusive_minimum is not None and value <= c.exclusive_minimum)
                or (c.exclusive_maximum is not None and value >= c.exclusive_maximum)
                or (isinstance(value, float) and math.isnan(value) and c.range_text())):
            return Violation(VALUE_OUT_OF_RANGE, f"must be {c.range_text()}, got {value!r}")
        return None
    if isinstance(value, str):
        n = len(value)
        if (c.min_length is not None and n < c.min_length) or (c.max_length is not None and n > c.max_length):
            shown = value if n <= 40 else value[:37] + "..."
            return Violation(STRING_LENGTH_OUT_OF_RANGE, f"must be {c.length_text()}, got {shown!r} ({n} characters)")
        if c.pattern is not None and re.fullmatch(c.pattern, value) is None:
            return Violation(PATTERN_MISMATCH, f"must match {c.pattern!r}, got {value!r}")
    return None
