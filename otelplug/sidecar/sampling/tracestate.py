"""The W3C tracestate header and the OpenTelemetry ``ot`` member in it.

``ot=th:c;rv:9b8233f7e3a151;other:x`` carries the sampling threshold and
explicit randomness (OTEP 235).  Updating it follows the W3C rule that a
modified member moves to the front, and the Collector's serialisation
order inside ``ot``: ``rv``, then ``th``, then the other sub-keys.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import otep235

_OT_VALUE = re.compile(r"^[a-z][a-z0-9]*:[a-zA-Z0-9._\-]*(?:;[a-z][a-z0-9]*:[a-zA-Z0-9._\-]*)*$")
MAX_OT_LENGTH = 256


class TraceStateError(ValueError):
    pass


@dataclass
class OTelState:
    """The parsed ``ot`` member.  ``threshold`` / ``randomness`` are None
    when absent; ``members`` are the other vendors' ``key=value`` entries."""
    threshold: int | None = None
    randomness: int | None = None
    extra: list = field(default_factory=list)       # other ot sub-keys, "k:v"
    members: list = field(default_factory=list)     # other tracestate entries, "k=v"

    def header(self) -> str:
        ot = []
        if self.randomness is not None:
            ot.append("rv:" + otep235.rvalue(self.randomness))
        if self.threshold is not None and self.threshold < otep235.NEVER_SAMPLE:
            ot.append("th:" + otep235.tvalue(self.threshold))
        ot.extend(self.extra)
        head = ["ot=" + ";".join(ot)] if ot else []
        return ",".join(head + self.members)


def parse(header: str) -> OTelState:
    """Parse a tracestate header; TraceStateError if the ``ot`` member is
    malformed (the Collector's samplers treat that as a sampling error)."""
    st = OTelState()
    if not header:
        return st
    for raw in header.split(","):
        member = raw.strip(" \t")
        if not member:
            continue
        key, eq, value = member.partition("=")
        if not eq:
            raise TraceStateError(f"tracestate member without '=': {member!r}")
        if key != "ot":
            st.members.append(member)
            continue
        if len(value) > MAX_OT_LENGTH or not _OT_VALUE.match(value):
            raise TraceStateError(f"invalid ot tracestate value {value!r}")
        for item in value.split(";"):
            k, _, v = item.partition(":")
            try:
                if k == "th":
                    st.threshold = otep235.parse_tvalue(v)
                elif k == "rv":
                    st.randomness = otep235.parse_rvalue(v)
                else:
                    st.extra.append(item)
            except ValueError as exc:
                raise TraceStateError(str(exc)) from None
    return st


def get(header: str, key: str) -> str | None:
    """The value of one tracestate member (the tail sampler's trace_state
    policy), None if absent or the header does not parse."""
    if not header:
        return None
    for raw in header.split(","):
        k, eq, v = raw.strip(" \t").partition("=")
        if eq and k == key:
            return v
    return None


def with_threshold(header: str, threshold: int, randomness: int | None = None) -> str:
    """``header`` with ``ot`` carrying ``threshold`` (and ``randomness`` if
    given).  The header must parse (callers parsed it already)."""
    st = parse(header)
    st.threshold = threshold
    if randomness is not None:
        st.randomness = randomness
    return st.header()


def adjusted_count(header: str) -> float:
    """How many spans one sampled span stands for: ``1 / probability`` from
    the ``th`` of the ``ot`` member; 1 without one, or when that ``th`` does
    not parse.  Lenient about the other ``ot`` sub-keys (unlike ``parse``):
    a counter such as spanmetrics must not lose the weight of a span whose
    ``rv`` is malformed."""
    value = get(header, "ot")
    for item in (value or "").split(";"):
        k, _, v = item.partition(":")
        if k == "th":
            try:
                return otep235.adjusted_count(otep235.parse_tvalue(v))
            except ValueError:
                return 1.0
    return 1.0
