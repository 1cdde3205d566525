"""Policies on the trace summary: no span decoding needed."""
from __future__ import annotations

from fractions import Fraction

from ..decision import Decision
from ....sampling.hashing import _FNV64_PRIME, fnv1a64_state

_U64 = (1 << 64) - 1

_STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}


class Policy:
    name = ""

    @classmethod
    def build(cls, cfg, build):
        p = cls(cfg)
        p.name = cfg.name
        return p


class AlwaysSample(Policy):
    def __init__(self, cfg):
        pass

    def evaluate(self, trace, ctx):
        return Decision.SAMPLED


class Latency(Policy):
    """Trace duration (latest end - earliest start) >= threshold_ms, or in
    (threshold_ms, upper_threshold_ms] when an upper bound is set.  The
    Collector tests running prefixes of the span list; the full trace's
    duration is used here so the result does not depend on span order."""

    def __init__(self, cfg):
        self.lo, self.hi = cfg.latency.threshold_ms, cfg.latency.upper_threshold_ms

    def evaluate(self, trace, ctx):
        ms = (trace.max_end - trace.min_start) // 1_000_000 if trace.max_end > trace.min_start else 0
        ok = ms >= self.lo if self.hi == 0 else self.lo < ms <= self.hi
        return Decision.SAMPLED if ok else Decision.NOT_SAMPLED


class SpanCount(Policy):
    def __init__(self, cfg):
        self.lo, self.hi = cfg.span_count.min_spans, cfg.span_count.max_spans

    def evaluate(self, trace, ctx):
        n = trace.span_count
        ok = n >= self.lo if self.hi == 0 else self.lo <= n <= self.hi
        return Decision.SAMPLED if ok else Decision.NOT_SAMPLED


class StatusCode(Policy):
    def __init__(self, cfg):
        self.mask = 0
        for c in cfg.status_code.status_codes:
            self.mask |= 1 << _STATUS[c]

    def evaluate(self, trace, ctx):
        return Decision.SAMPLED if trace.status_mask & self.mask else Decision.NOT_SAMPLED


class Probabilistic(Policy):
    """FNV-1a 64 of salt + trace id <= ratio * (2**64 - 1), as upstream
    (default salt ``default-hash-seed``)."""

    def __init__(self, cfg):
        pc = cfg.probabilistic
        self.salt = (pc.hash_salt or "default-hash-seed").encode()
        ratio = Fraction(min(max(pc.sampling_percentage, 0.0), 100.0)) / 100
        self.threshold = int(Fraction((1 << 64) - 1) * ratio)
        self._state = fnv1a64_state(self.salt)     # the salt's part of the hash, once

    def evaluate(self, trace, ctx):
        h = self._state
        for b in trace.trace_id:                   # 16 steps: cheaper than numpy for one id
            h = ((h ^ b) * _FNV64_PRIME) & _U64
        return Decision.SAMPLED if h <= self.threshold else Decision.NOT_SAMPLED
