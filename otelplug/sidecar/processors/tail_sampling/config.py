"""The tail_sampling configuration, key for key the Collector's.

Policies are decoded by hand from the list of mappings: a policy's
``and`` block is a Python keyword, so its dataclass field is ``and_``, which
the config decoder reads from (and reports under) the key ``and``.
Sub-policies (``and_sub_policy``, ``drop_sub_policy``,
``composite_sub_policy``) are policies of the same shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...config.decode import Duration, decode
from ...config.errors import ErrorList

POLICY_TYPES = ("always_sample", "latency", "numeric_attribute", "probabilistic", "status_code",
                "string_attribute", "rate_limiting", "bytes_limiting", "span_count", "trace_state",
                "boolean_attribute", "and", "drop", "composite")


@dataclass
class LatencyCfg:
    threshold_ms: int = 0
    upper_threshold_ms: int = 0


@dataclass
class NumericAttributeCfg:
    key: str = ""
    min_value: int | None = None
    max_value: int | None = None
    invert_match: bool = False


@dataclass
class ProbabilisticCfg:
    hash_salt: str = ""
    sampling_percentage: float = 0.0


@dataclass
class StatusCodeCfg:
    status_codes: list[str] = field(default_factory=list)


@dataclass
class StringAttributeCfg:
    key: str = ""
    values: list[str] = field(default_factory=list)
    enabled_regex_matching: bool = False
    cache_max_size: int = 0
    invert_match: bool = False


@dataclass
class RateLimitingCfg:
    spans_per_second: int = 0


@dataclass
class BytesLimitingCfg:
    bytes_per_second: int = 0
    burst_capacity: int = 0          # 0: twice bytes_per_second


@dataclass
class SpanCountCfg:
    min_spans: int = 0
    max_spans: int = 0


@dataclass
class TraceStateCfg:
    key: str = ""
    values: list[str] = field(default_factory=list)


@dataclass
class BooleanAttributeCfg:
    key: str = ""
    value: bool = False
    invert_match: bool = False


@dataclass
class AndCfg:
    and_sub_policy: list[Any] = field(default_factory=list)


@dataclass
class DropCfg:
    drop_sub_policy: list[Any] = field(default_factory=list)


@dataclass
class RateAllocationCfg:
    policy: str = ""
    percent: int = 0


@dataclass
class CompositeCfg:
    max_total_spans_per_second: int = 0
    policy_order: list[str] = field(default_factory=list)
    composite_sub_policy: list[Any] = field(default_factory=list)
    rate_allocation: list[RateAllocationCfg] = field(default_factory=list)


@dataclass
class PolicyCfg:
    name: str = ""
    type: str = ""
    latency: LatencyCfg = field(default_factory=LatencyCfg)
    numeric_attribute: NumericAttributeCfg = field(default_factory=NumericAttributeCfg)
    probabilistic: ProbabilisticCfg = field(default_factory=ProbabilisticCfg)
    status_code: StatusCodeCfg = field(default_factory=StatusCodeCfg)
    string_attribute: StringAttributeCfg = field(default_factory=StringAttributeCfg)
    rate_limiting: RateLimitingCfg = field(default_factory=RateLimitingCfg)
    bytes_limiting: BytesLimitingCfg = field(default_factory=BytesLimitingCfg)
    span_count: SpanCountCfg = field(default_factory=SpanCountCfg)
    trace_state: TraceStateCfg = field(default_factory=TraceStateCfg)
    boolean_attribute: BooleanAttributeCfg = field(default_factory=BooleanAttributeCfg)
    and_: AndCfg = field(default_factory=AndCfg)
    drop: DropCfg = field(default_factory=DropCfg)
    composite: CompositeCfg = field(default_factory=CompositeCfg)
    # sub-policies, decoded (filled by parse_policy)
    subs: list = field(default_factory=list)


@dataclass
class DecisionCacheCfg:
    """``sampled_cache_size``: trace ids whose sampled decision is remembered
    after the trace is evicted, so its late spans are kept; 0: none.

    ``non_sampled_cache_size``: the same for not-sampled decisions.
    """
    sampled_cache_size: int = 0
    non_sampled_cache_size: int = 0


@dataclass
class TailSamplingConfig:
    """``decision_wait``: time from a trace's first span to its decision.

    ``num_traces``: traces held in memory; a new one beyond that evicts the
    oldest.

    ``expected_new_traces_per_sec``: accepted for the Collector's configs;
    nothing is sized from it here.

    ``decision_cache``: decisions remembered beyond a trace's eviction.

    ``sample_on_first_match``: stop at the first policy that samples.

    ``drop_pending_traces_on_shutdown``: at shutdown, drop undecided traces
    instead of deciding them then.

    ``max_trace_bytes``: span record bytes one trace may buffer; later
    spans of a bigger trace are dropped and counted.

    ``policies``: the sampling policies (the Collector's types and fields).
    """
    decision_wait: Duration = Duration(30.0)
    num_traces: int = 50000
    expected_new_traces_per_sec: int = 0
    decision_cache: DecisionCacheCfg = field(default_factory=DecisionCacheCfg)
    sample_on_first_match: bool = False
    drop_pending_traces_on_shutdown: bool = False
    # otelplug: a trace buffers at most this many bytes of span records;
    # later spans of a bigger trace are dropped (and counted).  With
    # num_traces it bounds the memory: num_traces * max_trace_bytes.
    max_trace_bytes: int = 1 << 20
    policies: list[Any] = field(default_factory=list)

    def validate(self):
        errs = []
        if self.decision_wait <= 0:
            errs.append((("decision_wait",), "must be positive"))
        if self.num_traces <= 0:
            errs.append((("num_traces",), "must be positive"))
        if self.max_trace_bytes <= 0:
            errs.append((("max_trace_bytes",), "must be positive"))
        if not self.policies:
            errs.append((("policies",), "at least one policy is required"))
        parsed, perrs = parse_policies(self.policies, ("policies",))
        errs.extend(perrs)
        self.parsed_policies = parsed
        return errs

    def policy_configs(self) -> list[PolicyCfg]:
        parsed = getattr(self, "parsed_policies", None)
        if parsed is None:
            parsed, errs = parse_policies(self.policies, ("policies",))
            if errs:
                raise ValueError("; ".join(f"{'::'.join(p)}: {m}" for p, m in errs))
        return parsed


def parse_policies(items, path) -> tuple[list[PolicyCfg], list]:
    out, errs, names = [], [], set()
    for i, item in enumerate(items or []):
        p, e = parse_policy(item, path + (str(i),))
        errs.extend(e)
        if p is not None:
            if p.name in names:
                errs.append((path + (str(i), "name"), f"duplicate policy name {p.name!r}"))
            names.add(p.name)
            out.append(p)
    return out, errs


def parse_policy(item, path) -> tuple[PolicyCfg | None, list]:
    c = ErrorList()
    # decode() reads the keyword field ``and_`` from the key ``and`` itself
    cfg = decode(PolicyCfg, item, path, c)
    errs = [(tuple(e.path), e.message) for e in c.errors]
    if cfg is None or errs:
        return None, errs
    if not cfg.name:
        errs.append((path + ("name",), "a policy needs a name"))
    if cfg.type not in POLICY_TYPES:
        errs.append((path + ("type",), f"unknown sampling policy type {cfg.type!r} "
                                       f"(one of {', '.join(POLICY_TYPES)})"))
    subs = {"and": ("and", cfg.and_.and_sub_policy, "and_sub_policy"),
            "drop": ("drop", cfg.drop.drop_sub_policy, "drop_sub_policy"),
            "composite": ("composite", cfg.composite.composite_sub_policy, "composite_sub_policy")}
    if cfg.type in subs:
        block, items, key = subs[cfg.type]
        cfg.subs, sub_errs = parse_policies(items, path + (block, key))
        errs.extend(sub_errs)
        if not cfg.subs:
            errs.append((path + (block, key), f"a {cfg.type} policy needs sub-policies"))
    if cfg.type == "composite":
        names = [s.name for s in cfg.subs]
        for n in cfg.composite.policy_order:
            if n not in names:
                errs.append((path + ("composite", "policy_order"), f"unknown sub-policy {n!r}"))
        total = sum(r.percent for r in cfg.composite.rate_allocation)
        if total > 100:
            errs.append((path + ("composite", "rate_allocation"), "percentages add up to more than 100"))
    if cfg.type == "string_attribute" and cfg.string_attribute.enabled_regex_matching:
        import re
        for v in cfg.string_attribute.values:
            try:
                re.compile(v)
            except re.error as exc:
                errs.append((path + ("string_attribute", "values"), f"invalid regex {v!r}: {exc}"))
    if cfg.type in ("numeric_attribute", "string_attribute", "boolean_attribute", "trace_state"):
        if not getattr(cfg, cfg.type).key:
            errs.append((path + (cfg.type, "key"), "a key is required"))
    if cfg.type == "rate_limiting" and cfg.rate_limiting.spans_per_second <= 0:
        errs.append((path + ("rate_limiting", "spans_per_second"), "must be positive"))
    if cfg.type == "bytes_limiting" and cfg.bytes_limiting.bytes_per_second <= 0:
        errs.append((path + ("bytes_limiting", "bytes_per_second"), "must be positive"))
    for code in cfg.status_code.status_codes if cfg.type == "status_code" else ():
        if code not in ("OK", "ERROR", "UNSET"):
            errs.append((path + ("status_code", "status_codes"), f"unknown status code {code!r}"))
    return cfg, errs
