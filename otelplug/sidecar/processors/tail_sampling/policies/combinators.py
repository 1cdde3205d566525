"""and, drop and composite: policies made of sub-policies."""
from __future__ import annotations

import math

from ..decision import Decision, is_sampled
from .basic import Policy

_NO = (Decision.NOT_SAMPLED, Decision.INVERT_NOT_SAMPLED)


class And(Policy):
    """Sampled when every sub-policy samples."""

    def __init__(self, subs):
        self.subs = subs

    @classmethod
    def build(cls, cfg, build):
        p = cls([build(s) for s in cfg.subs])
        p.name = cfg.name
        return p

    def evaluate(self, trace, ctx):
        for sub in self.subs:
            d = sub.evaluate(trace, ctx)
            if d in _NO:
                return Decision.NOT_SAMPLED
            if d == Decision.ERROR:
                return d
        return Decision.SAMPLED


class Drop(And):
    """Dropped (overriding every other policy) when every sub-policy
    samples; otherwise no opinion (NotSampled)."""

    def evaluate(self, trace, ctx):
        d = super().evaluate(trace, ctx)
        return Decision.DROPPED if d == Decision.SAMPLED else d


class Composite(Policy):
    """Sub-policies in ``policy_order`` (the listed order if none), each with
    a spans-per-second budget: ``percent`` of ``max_total_spans_per_second``
    from ``rate_allocation`` (0 percent: an equal share; not listed: no
    budget -- as the Collector's getRateAllocationMap).  The first
    sub-policy that samples decides: the trace is sampled if its spans fit
    that sub-policy's budget for the current second (the Collector checks
    that count against both the budget and max_total_spans_per_second)."""

    def __init__(self, cfg, build):
        c = cfg.composite
        subs = {s.name: build(s) for s in cfg.subs}
        names = list(c.policy_order) or [s.name for s in cfg.subs]
        default = c.max_total_spans_per_second / max(1, len(cfg.subs))
        alloc = {}
        for r in c.rate_allocation:
            alloc[r.policy] = (r.percent / 100 * c.max_total_spans_per_second if r.percent > 0
                               else default)
        self.subs = [(n, subs[n], int(alloc.get(n, 0))) for n in names]
        self.max_total = c.max_total_spans_per_second
        self.second = None
        self.used = {n: 0 for n in names}
        self.last_sub = None

    @classmethod
    def build(cls, cfg, build):
        p = cls(cfg, build)
        p.name = cfg.name
        return p

    def evaluate(self, trace, ctx):
        sec = math.floor(ctx.now())
        if sec != self.second:
            self.second = sec
            self.used = dict.fromkeys(self.used, 0)
        for name, sub, budget in self.subs:
            d = sub.evaluate(trace, ctx)
            if d == Decision.ERROR:
                return d
            if is_sampled(d):
                n = self.used[name] + trace.span_count
                if n <= budget and n <= self.max_total:
                    self.used[name] = n
                    self.last_sub = name
                    return Decision.SAMPLED
                return Decision.NOT_SAMPLED
        return Decision.NOT_SAMPLED
