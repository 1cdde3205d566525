"""Live-check statistics, shaped like Weaver live-check's report.

Counts samples ("entities") by type, findings by level and id, the highest
level per sample, and what part of the registry the samples exercised.
``registry_coverage`` is the fraction of registry attributes seen (Weaver's
definition); ``coverage_by_signal`` adds metrics, events and spans, and
``coverage_by_namespace`` splits attribute coverage by the first segment of
the attribute name.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from .livecheck import LEVEL_RANK, Finding
from .registry import ResolvedRegistry


class LiveCheckStats:
    def __init__(self, registry: ResolvedRegistry):
        self.registry = registry
        self.entities_by_type: Counter[str] = Counter()
        self.level_counts: Counter[str] = Counter()
        self.type_counts: Counter[str] = Counter()
        self.highest_level_counts: Counter[str] = Counter()
        self.no_advice_count = 0
        self.seen_registry_attributes: Counter[str] = Counter()
        self.seen_non_registry_attributes: Counter[str] = Counter()
        self.seen_registry_metrics: Counter[str] = Counter()
        self.seen_non_registry_metrics: Counter[str] = Counter()
        self.seen_registry_events: Counter[str] = Counter()
        self.seen_non_registry_events: Counter[str] = Counter()
        self.seen_registry_spans: Counter[str] = Counter()

    # called by LiveChecker --------------------------------------------------
    # ``times`` lets a batch checker that caches results per sample shape
    # count n identical samples at once (see StatsRecorder and replay).
    def record(self, sample_type: str, findings: Iterable[Finding], times: int = 1) -> None:
        findings = list(findings)
        self.entities_by_type[sample_type] += times
        if not findings:
            self.no_advice_count += times
            return
        highest = max(findings, key=lambda f: LEVEL_RANK.get(f.level, -1)).level
        self.highest_level_counts[highest] += times
        for f in findings:
            self.level_counts[f.level] += times
            self.type_counts[f.id] += times

    def seen_attribute(self, name: str, definition: str | None, times: int = 1) -> None:
        if definition is None:
            self.seen_non_registry_attributes[name] += times
        else:
            self.seen_registry_attributes[definition] += times

    def seen_metric(self, name: str, known: bool, times: int = 1) -> None:
        (self.seen_registry_metrics if known else self.seen_non_registry_metrics)[name] += times

    def seen_event(self, name: str, known: bool, times: int = 1) -> None:
        (self.seen_registry_events if known else self.seen_non_registry_events)[name] += times

    def seen_span(self, name: str, definition: str | None, times: int = 1) -> None:
        if definition is not None:
            self.seen_registry_spans[definition] += times

    def replay(self, calls: Iterable[tuple], times: int = 1) -> None:
        """Apply the calls a :class:`StatsRecorder` captured, ``times`` times."""
        for name, *args in calls:
            getattr(self, name)(*args, times=times)

    # report ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        reg = self.registry
        attr_total = len(reg.attributes)
        by_signal = {
            "attributes": _coverage(len(self.seen_registry_attributes), attr_total),
            "metrics": _coverage(len(self.seen_registry_metrics), len(reg.metrics)),
            "events": _coverage(len(self.seen_registry_events), len(reg.events)),
            "spans": _coverage(len(self.seen_registry_spans), len(reg.spans)),
        }
        namespaces: dict[str, list[int]] = {}
        for name in reg.attributes:
            ns = name.split(".", 1)[0]
            entry = namespaces.setdefault(ns, [0, 0])
            entry[1] += 1
            if name in self.seen_registry_attributes:
                entry[0] += 1
        return {
            "total_entities": sum(self.entities_by_type.values()),
            "total_entities_by_type": dict(sorted(self.entities_by_type.items())),
            "total_advisories": sum(self.level_counts.values()),
            "advice_level_counts": dict(sorted(self.level_counts.items())),
            "advice_type_counts": dict(sorted(self.type_counts.items())),
            "highest_advice_level_counts": dict(sorted(self.highest_level_counts.items())),
            "no_advice_count": self.no_advice_count,
            "seen_registry_attributes": dict(sorted(self.seen_registry_attributes.items())),
            "seen_non_registry_attributes": dict(sorted(self.seen_non_registry_attributes.items())),
            "seen_registry_metrics": dict(sorted(self.seen_registry_metrics.items())),
            "seen_non_registry_metrics": dict(sorted(self.seen_non_registry_metrics.items())),
            "seen_registry_events": dict(sorted(self.seen_registry_events.items())),
            "seen_non_registry_events": dict(sorted(self.seen_non_registry_events.items())),
            "seen_registry_spans": dict(sorted(self.seen_registry_spans.items())),
            "registry_coverage": by_signal["attributes"]["coverage"],
            "coverage_by_signal": by_signal,
            "coverage_by_namespace": {ns: _coverage(seen, total) for ns, (seen, total) in sorted(namespaces.items())},
        }


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


def stats_text(stats: dict[str, Any]) -> list[str]:
    """The statistics of :meth:`LiveCheckStats.to_dict` as lines a person
    reads (the JSON output keeps the dict)."""
    lines = [
        f"samples: {stats['total_entities']} ({_counts_text(stats['total_entities_by_type'])})",
        f"findings: {stats['total_advisories']} ({_counts_text(stats['advice_level_counts'])})",
    ]
    by_id = stats["advice_type_counts"]
    if by_id:
        lines.append("findings by id:")
        width = max(len(k) for k in by_id)
        lines += [f"  {fid:<{width}}  {n}" for fid, n in sorted(by_id.items(), key=lambda kv: (-kv[1], kv[0]))]
    lines.append("registry coverage: " + ", ".join(
        f"{kind} {c['seen']}/{c['total']} ({c['coverage']:.1%})" for kind, c in stats["coverage_by_signal"].items()))
    unknown = stats["seen_non_registry_attributes"]
    if unknown:
        lines.append(f"attributes not in the registry: {', '.join(sorted(unknown))}")
    return lines


def _coverage(seen: int, total: int) -> dict[str, Any]:
    return {"seen": seen, "total": total, "coverage": (seen / total) if total else 0.0}


class StatsRecorder:
    """Stands in for :class:`LiveCheckStats` while one sample is checked and
    keeps the calls, so that the same statistics can be applied later for
    any number of samples of the same shape (``LiveCheckStats.replay``)."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def record(self, sample_type: str, findings: Iterable[Finding]) -> None:
        self.calls.append(("record", sample_type, tuple(findings)))

    def seen_attribute(self, name: str, definition: str | None) -> None:
        self.calls.append(("seen_attribute", name, definition))

    def seen_metric(self, name: str, known: bool) -> None:
        self.calls.append(("seen_metric", name, known))

    def seen_event(self, name: str, known: bool) -> None:
        self.calls.append(("seen_event", name, known))

    def seen_span(self, name: str, definition: str | None) -> None:
        self.calls.append(("seen_span", name, definition))
