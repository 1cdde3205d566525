"""OTel metric and attribute names to Prometheus names, as the Collector's
``pkg/translator/prometheus`` does (normalize_name.go, normalize_label.go).

One deliberate difference: the Collector keeps any Unicode letter or digit,
which newer Prometheus servers accept with UTF-8 names; here only ASCII
letters and digits are kept, so every name is valid for the classic
``[a-zA-Z_:][a-zA-Z0-9_:]*`` rule that ``promtool`` and older servers check.
"""
from __future__ import annotations

import base64
import json
import re

# OTel (UCUM "c/s") units to Prometheus base-unit words
UNIT_MAP = {
    # time
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds",
    # bytes
    "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes",
    "TBy": "terabytes",
    # SI
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    # misc
    "Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent",
}

# the unit after a "/" (``By/s`` -> ``bytes_per_second``), singular
PER_UNIT_MAP = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week",
                "mo": "month", "y": "year"}

_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_FORBIDDEN = re.compile(r"[^A-Za-z0-9_:]+")
_LABEL_BAD = re.compile(r"[^A-Za-z0-9_]")
VALID_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
VALID_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _tokens(s: str) -> list[str]:
    return [t for t in _NON_ALNUM.split(s) if t]


def clean_up(s: str) -> str:
    """Non-alphanumeric runs to one ``_``, trimmed at both ends."""
    return "_".join(_tokens(s))


def metric_name(name: str, unit: str | None, kind: str, monotonic: bool,
                namespace: str = "", add_suffixes: bool = True) -> str:
    """The Prometheus name of an OTel metric.

    ``kind`` is ``sum``, ``gauge``, ``histogram`` (the OTel data kind).
    With suffixes: the unit word(s) unless already in the name, ``_total``
    for monotonic sums (moved to the end), ``_ratio`` for gauges of unit 1.
    """
    unit = unit or ""
    if not add_suffixes:
        out = "_".join(t for t in _FORBIDDEN.split(name) if t)
        if namespace:
            return f"{namespace}_{out}"
        return "_" + out if out[:1].isdigit() else out
    tokens = _tokens(name)
    main, _, per = unit.partition("/")
    main = main.strip()
    if main and "{" not in main and "}" not in main:
        word = clean_up(UNIT_MAP.get(main, main))
        if word and word not in tokens:
            tokens.append(word)
    per = per.strip()
    if per and "{" not in per and "}" not in per:
        word = clean_up(PER_UNIT_MAP.get(per, per))
        if word and word not in tokens:
            tokens += ["per", word]
    if kind == "sum" and monotonic:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind == "gauge":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    if namespace:
        tokens.insert(0, namespace)
    out = "_".join(tokens)
    return "_" + out if out[:1].isdigit() else out


def label_name(key: str) -> str:
    """An attribute key as a label name: other characters to ``_``, a
    leading digit gets ``key_``, a single leading ``_`` gets ``key``
    (``__`` stays: reserved, as in the Collector)."""
    if not key:
        return key
    out = _LABEL_BAD.sub("_", key)
    if out[0].isdigit():
        return "key_" + out
    if out.startswith("_") and not out.startswith("__"):
        return "key" + out
    return out


def _json_value(v):
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v


def label_value(v) -> str:
    """An attribute value as a label value (pcommon ``AsString``): bools
    lower case, bytes base64, arrays and maps as JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if v is None:
        return ""
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return json.dumps(_json_value(v), separators=(",", ":"), ensure_ascii=False)


def format_float(v: float) -> str:
    """A sample value or bound as Go prints it (shortest round trip;
    integers without a trailing ``.0``)."""
    v = float(v)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def labels_from_attributes(attrs: dict, cache: dict | None = None) -> dict[str, str]:
    """Attributes to labels; keys that normalise to the same label name have
    their values joined with ``;`` in key order (as the Collector does)."""
    out: dict[str, str] = {}
    for key in sorted(attrs):
        name = cache.get(key) if cache is not None else None
        if name is None:
            name = label_name(key)
            if cache is not None and len(cache) < 100_000:
                cache[key] = name
        if not name:
            continue
        val = label_value(attrs[key])
        out[name] = out[name] + ";" + val if name in out else val
    return out
