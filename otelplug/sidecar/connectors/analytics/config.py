"""Typed config of the ``analytics`` connector and its rules.

```yaml
connectors:
  analytics:
    windows:
      - {name: 1m, type: tumbling, size: 1m}
      - {name: 5m_by_1m, type: hopping, size: 5m, step: 1m}
      - {name: visit, type: session, gap: 30s}
    exclude_dimensions: [status.code]     # so error_rate is per operation
    dimensions: [{name: http.route}]
    alerts: alerts                        # the alerts extension that runs the rules
    rules:
      - name: CheckoutErrors
        for: 30s
        labels: {severity: page}
        annotations: {summary: "checkout fails"}
        threshold: {window: 1m, metric: error_rate, op: ">", value: 0.05,
                    where: {service.name: shop}}
```

Each rule has a name, labels, annotations, ``for``, ``keep_firing_for`` and
exactly one of ``threshold``, ``anomaly``, ``count``, ``sequence``,
``absence`` or ``burn_rate``.  Rules that read windows name one of this
connector's windows and group dimensions; a wrong name is a config error at
its path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from otelplug.analytics.rules import WINDOW_METRICS

from ...config.decode import Duration
from ..spanmetrics import Dimension

DEFAULT_DIMENSIONS = ("service.name", "span.name", "span.kind", "status.code")
LOG_DIMENSIONS = ("service.name", "event.name", "severity")
RULE_KINDS = ("threshold", "anomaly", "count", "sequence", "absence", "burn_rate")
Metric = Literal["count", "errors", "error_rate", "throughput", "sum", "avg", "p50", "p95", "p99", "max"]
Op = Literal[">", ">=", "<", "<=", "==", "!="]
assert set(Metric.__args__) == set(WINDOW_METRICS)


@dataclass
class WindowConfig:
    """One window: ``tumbling`` (``size``), ``hopping`` (``size`` every
    ``step``) or ``session`` (closes after ``gap`` without items)."""
    name: str = ""
    """The window's name: the ``analytics.window`` attribute of its points, what rules refer to."""
    type: Literal["tumbling", "hopping", "session"] = "tumbling"
    """``tumbling``, ``hopping`` (sliding) or ``session``."""
    size: Duration = Duration(0.0)
    """Length of a tumbling or hopping window."""
    step: Duration = Duration(0.0)
    """How far apart hopping windows start (at most ``size``)."""
    gap: Duration = Duration(0.0)
    """A session window closes after this long without items of its group."""

    def validate(self):
        errs = []
        if not self.name:
            errs.append((("name",), "must be set"))
        if self.type == "session":
            if self.gap <= 0:
                errs.append((("gap",), "a session window needs a positive gap"))
        elif self.size <= 0:
            errs.append((("size",), f"a {self.type} window needs a positive size"))
        if self.type == "hopping" and not 0 < self.step <= self.size:
            errs.append((("step",), "a hopping window needs a step between 0 and its size"))
        return errs

    @property
    def span_s(self) -> float:
        return float(self.gap) * 4 if self.type == "session" else float(self.size)


@dataclass
class MatchConfig:
    """Which items a rule counts: ``signal`` (traces or logs), span or
    event ``name`` (any of), ``status`` (error: span status ERROR or log
    severity ERROR and above; ok: the others), ``attributes`` (equal)."""
    signal: Literal["", "traces", "logs"] = ""
    """Only spans (``traces``) or only log records (``logs``); empty: both."""
    name: list[str] = field(default_factory=list)
    """Span names or log event names, any of them; empty: any name."""
    status: Literal["", "error", "ok"] = ""
    """``error``: span status ERROR or log severity ERROR and above; ``ok``: the others."""
    attributes: dict[str, Any] = field(default_factory=dict)
    """Attribute values that must be equal (the item's own attributes, then its resource's)."""


@dataclass
class _WindowRule:
    """What rules over window results share: which signal's windows, which
    window, and which groups (``where``: dimension values)."""
    signal: Literal["traces", "logs"] = "traces"
    """Whose windows: spans' (``traces``) or log records' (``logs``)."""
    window: str = ""
    """The name of one of the connector's windows."""
    where: dict[str, Any] = field(default_factory=dict)
    """Group dimension values a group must have (empty: every group)."""


@dataclass
class ThresholdRule(_WindowRule):
    """A window metric of each group compared with ``value``."""
    metric: Metric = "error_rate"
    """The window metric compared."""
    op: Op = ">"
    """The comparison."""
    value: float = 0.0
    """The threshold."""


@dataclass
class AnomalyRule(_WindowRule):
    """A window metric of a group scoring ``score`` or more (see anomaly)."""
    metric: Metric = "p99"
    """The window metric scored (listed in ``anomaly.metrics``)."""
    score: float = 6.0
    """The score at or above which the group is anomalous."""


@dataclass
class CountRule:
    """Matching items within the last ``within`` compared with ``value``."""
    match: MatchConfig = field(default_factory=MatchConfig)
    """Which items count."""
    within: Duration = Duration(60.0)
    """The sliding window, on the items' own times: an item arriving more than this late is not counted."""
    op: Op = ">"
    """The comparison."""
    value: float = 0.0
    """The threshold."""


@dataclass
class SequenceRule:
    """``first`` followed (or, with ``followed: false``, not followed) by
    ``then`` within ``within``, for the same value of attribute ``key``."""
    first: MatchConfig = field(default_factory=MatchConfig)
    """The items that start a sequence (A)."""
    then: MatchConfig = field(default_factory=MatchConfig)
    """The items that complete it (B)."""
    key: str = ""
    """The attribute whose value ties A and B together."""
    within: Duration = Duration(60.0)
    """How long B may take after A."""
    followed: bool = False
    """true: report each A followed by B in time; false: each A without B in time."""

    def validate(self):
        errs = []
        if not self.key:
            errs.append((("key",), "must name the attribute that ties first and then together"))
        if self.within <= 0:
            errs.append((("within",), "must be positive"))
        return errs


@dataclass
class AbsenceRule:
    """No matching item for ``within``."""
    match: MatchConfig = field(default_factory=MatchConfig)
    """The items whose absence is reported."""
    within: Duration = Duration(300.0)
    """How long without a matching item (counted from start) before the rule is active."""

    def validate(self):
        return [] if self.within > 0 else [(("within",), "must be positive")]


@dataclass
class BurnWindow:
    long: Duration = Duration(3600.0)
    """The long window of the pair."""
    short: Duration = Duration(300.0)
    """The short window, which makes the alert stop soon after the errors do."""
    factor: float = 14.4
    """The burn rate both windows must exceed."""

    def validate(self):
        return [] if 0 < self.short < self.long else [(("short",), "must be positive and shorter than long")]


@dataclass
class BurnRateRule:
    """Error budget burn of matching items against ``objective`` (0.999:
    99.9% without error), over pairs of windows (default: the SRE
    workbook's 1h/5m at 14.4x and 6h/30m at 6x)."""
    match: MatchConfig = field(default_factory=MatchConfig)
    """The items the objective is about (their errors spend the budget)."""
    objective: float = 0.999
    """The fraction of items without error the SLO promises."""
    windows: list[BurnWindow] = field(default_factory=lambda: [
        BurnWindow(Duration(3600.0), Duration(300.0), 14.4),
        BurnWindow(Duration(21600.0), Duration(1800.0), 6.0)])
    """Pairs of (long, short) windows and the burn rate both must exceed."""

    def validate(self):
        errs = [] if 0 < self.objective < 1 else [(("objective",), "must be between 0 and 1")]
        if not self.windows:
            errs.append((("windows",), "needs at least one pair"))
        return errs


@dataclass
class RuleConfig:
    """An alert rule: ``name``, ``labels``, ``annotations``, ``for`` (how
    long the condition must hold before firing), ``keep_firing_for`` (how
    long it keeps firing after it clears) and one condition."""
    name: str = ""
    """The rule's name: the alerts' ``alertname`` label."""
    labels: dict[str, str] = field(default_factory=dict)
    """Labels added to its alerts."""
    annotations: dict[str, str] = field(default_factory=dict)
    """Annotations of its alerts (summary, description, runbook_url ...)."""
    for_: Duration = Duration(0.0)
    """How long the condition must hold before the alert fires."""
    keep_firing_for: Duration = Duration(0.0)
    """How long a firing alert keeps firing after its condition clears."""
    threshold: ThresholdRule | None = None
    """Condition: a window metric of a group against a value."""
    anomaly: AnomalyRule | None = None
    """Condition: a window metric's anomaly score at or above a level."""
    count: CountRule | None = None
    """Condition: matching items within a sliding window against a value."""
    sequence: SequenceRule | None = None
    """Condition: A followed (or not followed) by B within a time, per key."""
    absence: AbsenceRule | None = None
    """Condition: no matching item for a time."""
    burn_rate: BurnRateRule | None = None
    """Condition: SLO error budget burning too fast over pairs of windows."""

    @property
    def kind(self) -> str:
        return next((k for k in RULE_KINDS if getattr(self, k) is not None), "")

    @property
    def condition(self):
        return getattr(self, self.kind)

    def validate(self):
        errs = []
        if not self.name:
            errs.append((("name",), "must be set"))
        kinds = [k for k in RULE_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            errs.append(((), f"needs exactly one of {', '.join(RULE_KINDS)}"
                             + (f", got {', '.join(kinds)}" if kinds else "")))
        return errs


@dataclass
class AnomalyConfig:
    """Anomaly scores per group for these window metrics (median/MAD of the
    last ``history`` windows; no score until ``min_samples``)."""
    metrics: list[Metric] = field(default_factory=lambda: ["p99", "error_rate", "throughput"])
    """The window metrics scored, per group and window."""
    threshold: float = 6.0
    """The score from which a point is marked anomalous."""
    history: int = 30
    """How many past windows the baseline is made of."""
    min_samples: int = 8
    """Windows needed before a series is scored (until then: learning)."""

    def validate(self):
        return [] if 2 <= self.min_samples <= self.history else [
            (("min_samples",), "must be at least 2 and at most history")]


@dataclass
class AnalyticsConfig:
    """Windowed span and log analytics (traces -> metrics, logs -> metrics)
    and the rules that raise alerts from them.

    Groups: ``service.name``, ``span.name``, ``span.kind``, ``status.code``
    for spans (``service.name``, ``event.name``, ``severity`` for logs),
    minus ``exclude_dimensions``, plus ``dimensions``.  At most
    ``cardinality_limit`` groups; items of further groups go to one group
    with ``otel.metric.overflow=true``.  Groups idle for ``group_expiry``
    are forgotten."""
    windows: list[WindowConfig] = field(default_factory=lambda: [
        WindowConfig("1m", "tumbling", Duration(60.0))])
    """The windows every item is aggregated in."""
    dimensions: list[Dimension] = field(default_factory=list)
    """Extra group dimensions: attribute names (the item's, then its resource's) with a default."""
    exclude_dimensions: list[str] = field(default_factory=list)
    """Default dimensions left out of the groups (e.g. ``status.code``, for an error rate per operation)."""
    namespace: str = "analytics"
    """Prefix of the metric names."""
    allowed_lateness: Duration = Duration(5.0)
    """How long after its end (by the watermark) a window still takes items."""
    watermark_delay: Duration = Duration(1.0)
    """How far the watermark stays behind the newest item time (or the clock)."""
    max_clock_skew: Duration = Duration(60.0)
    """Items stamped further ahead of the sidecar's clock are counted as future and dropped."""
    cardinality_limit: int = 2000
    """Groups per signal; items of further groups go to the overflow group."""
    group_expiry: Duration = Duration(600.0)
    """Groups without items for this long are forgotten (0: never)."""
    relative_accuracy: float = 0.01
    """The quantiles' relative error bound."""
    flush_interval: Duration = Duration(1.0)
    """How often closed windows are looked for and emitted."""
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    """Anomaly scores per group and window metric."""
    alerts: str = ""
    """The id of the ``alerts`` extension that runs the rules (needed with rules)."""
    rules: list[RuleConfig] = field(default_factory=list)
    """Alert rules over these windows and items."""

    def group_dimensions(self, signal: str) -> list[str]:
        base = DEFAULT_DIMENSIONS if signal == "traces" else LOG_DIMENSIONS
        return [d for d in base if d not in self.exclude_dimensions] + [d.name for d in self.dimensions]

    def validate(self):
        errs = []
        names = [w.name for w in self.windows]
        if not self.windows:
            errs.append((("windows",), "needs at least one window"))
        for i, w in enumerate(self.windows):
            if names.count(w.name) > 1:
                errs.append((("windows", str(i), "name"), f"{w.name!r} is used twice"))
        if self.cardinality_limit < 1:
            errs.append((("cardinality_limit",), "must be at least 1"))
        if not 0 < self.relative_accuracy < 0.5:
            errs.append((("relative_accuracy",), "must be between 0 and 0.5"))
        if self.flush_interval <= 0:
            errs.append((("flush_interval",), "must be positive"))
        longest = max((w.span_s for w in self.windows), default=0.0) + float(self.allowed_lateness) \
            + float(self.watermark_delay)
        if 0 < self.group_expiry <= longest:
            errs.append((("group_expiry",), f"must be longer than the longest window plus lateness "
                                            f"and delay ({longest:g}s), or 0 to keep groups"))
        for i, d in enumerate(self.dimensions):
            if d.name in DEFAULT_DIMENSIONS:
                errs.append((("dimensions", str(i), "name"), f"{d.name!r} is already a default dimension"))
        if self.rules and not self.alerts:
            errs.append((("alerts",), "rules need the id of an alerts extension to run them"))
        rule_names = [r.name for r in self.rules]
        for i, r in enumerate(self.rules):
            at = ("rules", str(i))
            if rule_names.count(r.name) > 1:
                errs.append((at + ("name",), f"{r.name!r} is used twice"))
            cond = r.condition
            if isinstance(cond, _WindowRule):
                at = at + (r.kind,)
                if cond.window not in names:
                    errs.append((at + ("window",), f"unknown window {cond.window!r}; windows: "
                                 + ", ".join(repr(n) for n in names)))
                dims = self.group_dimensions(cond.signal)
                for k in cond.where:
                    if k not in dims:
                        errs.append((at + ("where", k), f"{k!r} is not a group dimension; "
                                     f"dimensions: {', '.join(dims)}"))
            if isinstance(cond, AnomalyRule) and cond.metric not in self.anomaly.metrics:
                errs.append((at + ("metric",), f"{cond.metric!r} is not scored; add it to anomaly.metrics "
                             f"({', '.join(self.anomaly.metrics)})"))
        return errs
