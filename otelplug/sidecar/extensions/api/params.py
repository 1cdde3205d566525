"""Query parameters, declared once: the same declarations validate a
request (400 naming the parameter) and describe it in the OpenAPI
document, so the two cannot disagree."""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

MAX_LIMIT = 1000           # huge limits are capped, not refused
MAX_STRING = 256


class ParamError(ValueError):
    pass


@dataclass(frozen=True)
class P:
    name: str
    kind: str = "string"           # string, integer, number, time, enum
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None   # for integers: values above are capped
    enum: tuple = ()
    pattern: str | None = None
    default: object = None
    description: str = ""
    where: str = "query"

    def schema(self) -> dict:
        if self.kind == "integer":
            s = {"type": "integer"}
            if self.minimum is not None:
                s["minimum"] = int(self.minimum)
        elif self.kind == "number":
            s = {"type": "number"}
            if self.minimum is not None:
                s["minimum"] = self.minimum
        elif self.kind == "enum":
            s = {"type": "string", "enum": list(self.enum)}
        elif self.kind == "time":
            s = {"type": "string", "pattern": TIME_PATTERN,
                 "description": "unix seconds, an ISO 8601 UTC time, or now-<N>s|m|h|d "
                                "(clamped to 1970..2261)"}
        else:
            s = {"type": "string", "maxLength": MAX_STRING}
            if self.pattern:      # JSON Schema patterns search: anchor them as fullmatch does
                s["pattern"] = f"^(?:{self.pattern})$"
        if self.default is not None:
            s["default"] = self.default
        return s

    def openapi(self) -> dict:
        d = {"name": self.name, "in": self.where, "required": self.required or self.where == "path",
             "schema": self.schema()}
        if self.description:
            d["description"] = self.description
        return d

    def parse(self, raw: str | None):
        if raw is None:
            if self.required:
                raise ParamError(f"parameter {self.name!r} is required")
            return self.default
        try:
            return self._parse(raw)
        except ParamError as exc:
            raise ParamError(f"parameter {self.name!r}: {exc}") from None

    def _parse(self, raw: str):
        if self.kind == "integer":
            if len(raw) > MAX_STRING or not re.fullmatch(r"[+-]?\d+", raw.strip()):
                raise ParamError(f"must be an integer, got {raw[:40]!r}")
            v = int(raw)
            if self.minimum is not None and v < self.minimum:
                raise ParamError(f"must be >= {int(self.minimum)}, got {v}")
            return min(v, int(self.maximum)) if self.maximum is not None else v
        if self.kind == "number":
            try:
                v = float(raw)
            except ValueError:
                raise ParamError(f"must be a number, got {raw[:40]!r}") from None
            if v != v or v in (float("inf"), float("-inf")):
                raise ParamError("must be finite")
            if self.minimum is not None and v < self.minimum:
                raise ParamError(f"must be >= {self.minimum}, got {v}")
            return min(v, self.maximum) if self.maximum is not None else v
        if self.kind == "enum":
            if raw not in self.enum:
                raise ParamError(f"must be one of {', '.join(self.enum)}, got {raw[:40]!r}")
            return raw
        if self.kind == "time":
            return parse_time(raw)
        if len(raw) > MAX_STRING:
            raise ParamError(f"longer than {MAX_STRING} characters")
        if self.pattern and not re.fullmatch(self.pattern, raw):
            raise ParamError(f"must match {self.pattern}, got {raw[:40]!r}")
        return raw


# what the document promises parse_time accepts (days up to 28 so that every
# string the pattern allows is a real date)
TIME_PATTERN = (r"^(now(-[0-9]{1,9}[smhd])?|[0-9]{1,10}(\.[0-9]{1,9})?"
                r"|[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
                r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?Z?)?)$")
_REL = re.compile(r"now(?:-(\d{1,9})([smhd]))?")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# what int64 nanoseconds (the store's timestamps) can hold: times outside
# are clamped, so "now-1000y" means "since the beginning"
MIN_TIME, MAX_TIME = 0.0, 9.2e9


def parse_time(raw: str, now: float | None = None) -> float:
    """Unix seconds (float) from ``1700000000``, ISO 8601 or ``now-15m``,
    clamped to [MIN_TIME, MAX_TIME]."""
    return min(max(_parse_time(raw, now), MIN_TIME), MAX_TIME)


def _parse_time(raw: str, now: float | None = None) -> float:
    import time
    text = raw.strip()
    m = _REL.fullmatch(text)
    if m:
        t = now if now is not None else time.time()
        return t - (int(m.group(1)) * _UNIT[m.group(2)] if m.group(1) else 0)
    try:
        v = float(text)
        if v != v or not 0 <= v < 1e11:
            raise ParamError(f"unix seconds out of range: {text[:40]!r}")
        return v
    except ValueError:
        pass
    try:
        d = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParamError(f"not a time: {text[:40]!r} (unix seconds, ISO 8601 or now-15m)") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.timestamp()


def parse_all(specs: list[P], query, path_params=None) -> dict:
    """Validated values of ``specs`` from a request; unknown names are an error."""
    known = {p.name for p in specs if p.where == "query"}
    unknown = sorted(set(query.keys()) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ParamError(f"unknown parameter {unknown[0]!r} (allowed: {allowed})")
    out = {}
    for p in specs:
        if p.where == "path":
            out[p.name] = p.parse((path_params or {}).get(p.name))
            continue
        values = query.getlist(p.name)
        if len(values) > 1:
            raise ParamError(f"parameter {p.name!r} given {len(values)} times")
        out[p.name] = p.parse(values[0] if values else None)
    # since after until is an empty range, not an error
    return out
