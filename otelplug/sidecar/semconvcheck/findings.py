"""Findings: the verdict one item shape gets, how a finding is named in
annotations and self-metric labels, and the shape of Weaver live-check's
finding event that ``emit_findings_as_logs`` writes."""
from __future__ import annotations

from typing import TYPE_CHECKING

from otelplug.semconv.livecheck import LEVEL_RANK

from .config import ANNOTATE, DROP, PASS, ROUTE

if TYPE_CHECKING:
    from .engine import Engine

#: attributes the ``annotate`` action adds (declared in semconv/semconv_processor.yaml)
FINDINGS_ATTRIBUTE = "otelplug.semconv.findings"
LEVEL_ATTRIBUTE = "otelplug.semconv.level"
#: Weaver live-check's finding event
FINDING_EVENT = "weaver.live_check.finding"
_SEVERITY = {"violation": (17, "ERROR"), "improvement": (13, "WARN"), "information": (9, "INFO")}


class Verdict:
    """What checking one item shape gave, ready to apply to many items."""

    __slots__ = ("findings", "calls", "action", "annotation", "level", "labels", "found")

    def __init__(self, findings, calls, engine: "Engine", signal: str):
        self.findings = findings
        self.calls = calls
        codes = engine.action_codes
        self.action = max((codes[f.level] for f in findings), default=PASS)
        noted = [f for f in findings if codes[f.level] in (ANNOTATE, ROUTE)]
        if noted and self.action != DROP:
            self.annotation = tuple(dict.fromkeys(_finding_tag(f) for f in noted))
            self.level = max((f.level for f in noted), key=LEVEL_RANK.__getitem__)
        else:
            self.annotation, self.level = (), None
        self.labels = [engine.labels(f, signal) for f in findings]
        self.found = None     # the findings counter's (label tuple, n) pairs: Engine._found


def _subject(f) -> str:
    c = f.context
    return (c.get("attribute_key") or c.get("metric_name") or c.get("event_name")
            or f.signal_name or "")


def _finding_tag(f) -> str:
    s = _subject(f)
    return f"{f.id}:{s}" if s else f.id


def _attr_value(v):
    if isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, (str, bool, int, float)) for x in v):
        return tuple(v)
    return str(v)
