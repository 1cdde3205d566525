"""Durations and instants as users write them (config, CLI).

Durations: the Collector's units (``250ms``, ``1m30s``, ``72h``) plus days
and weeks (``3d``, ``2w``), since retention is measured in them.  Instants:
ISO 8601 (``2026-12-01T10:00:00Z``, naive means UTC), ``now``, or a
duration meaning that long ago (``1h``).
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
          "d": 86400.0, "w": 7 * 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d|w)")


def parse_duration(text) -> float:
    """Seconds; ValueError naming the text if it is not a duration."""
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos == 0 or pos != len(s):
        raise ValueError(f"invalid duration {text!r}: use a number with a unit, like 90s, 15m, 72h or 3d")
    return total


#: what the store's timestamps (int64 nanoseconds since the epoch) can hold,
#: with room below int64's end that the engines' timestamp conversions need
#: (the same bounds as the HTTP API's: 1970 to 2261)
MIN_NS, MAX_NS = 0, 9_200_000_000 * 10**9


def parse_instant(text, now: float | None = None) -> int:
    """Nanoseconds since the epoch, clamped to what the store holds (as the
    HTTP API does): a bound before 1970 or after 2262 means "from the
    beginning" or "to the end", never a failed query."""
    return min(max(_parse_instant(text, now), MIN_NS), MAX_NS)


def _parse_instant(text, now: float | None = None) -> int:
    now = time.time() if now is None else now
    s = str(text).strip()
    if s == "now":
        return int(now * 1e9)
    try:
        return int((now - parse_duration(s)) * 1e9)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"invalid time {text!r}: use ISO 8601 (2026-12-01T10:00:00Z), "
                         f"'now', or a duration meaning that long ago (1h)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1e9)


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")
