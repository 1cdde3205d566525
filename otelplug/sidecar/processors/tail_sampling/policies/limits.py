"""Rate policies: token buckets like golang.org/x/time/rate's Limiter
(which the Collector uses): the bucket starts full, refills continuously,
holds at most ``burst`` tokens, and a trace passes if it can take all its
tokens (spans, or bytes) at once.  Time comes from the processor's clock."""
from __future__ import annotations

from ..decision import Decision
from .basic import Policy


class TokenBucket:
    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = float(rate), float(burst)
        self.tokens = float(burst)
        self.last = None

    def allow(self, now: float, n: float) -> bool:
        if self.last is not None and now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now if self.last is None else max(self.last, now)
        if n > self.burst or n > self.tokens:
            return False
        self.tokens -= n
        return True


class RateLimiting(Policy):
    """spans_per_second with a burst of twice that."""

    def __init__(self, cfg):
        sps = cfg.rate_limiting.spans_per_second
        self.bucket = TokenBucket(sps, 2 * sps)

    def evaluate(self, trace, ctx):
        return (Decision.SAMPLED if self.bucket.allow(ctx.now(), trace.span_count)
                else Decision.NOT_SAMPLED)


class BytesLimiting(Policy):
    """bytes_per_second, burst_capacity (default twice the rate).  A trace's
    size is the bytes of its span records in otelplug's wire format (the
    Collector estimates the protobuf size; both are close to the payload)."""

    def __init__(self, cfg):
        c = cfg.bytes_limiting
        self.bucket = TokenBucket(c.bytes_per_second, c.burst_capacity or 2 * c.bytes_per_second)

    def evaluate(self, trace, ctx):
        return (Decision.SAMPLED if self.bucket.allow(ctx.now(), trace.nbytes)
                else Decision.NOT_SAMPLED)
