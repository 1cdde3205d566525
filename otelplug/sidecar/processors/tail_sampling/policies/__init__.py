"""Tail sampling policies, one module per group, built from config by
``build``.  A policy is an object with ``name`` and
``evaluate(trace, ctx) -> Decision``; ``ctx`` gives resource attributes
(``ctx.resource(key)``) and the processor's clock (``ctx.now()``)."""
from __future__ import annotations

from . import attributes, basic, combinators, limits

BUILDERS = {
    "always_sample": basic.AlwaysSample.build,
    "latency": basic.Latency.build,
    "span_count": basic.SpanCount.build,
    "status_code": basic.StatusCode.build,
    "probabilistic": basic.Probabilistic.build,
    "numeric_attribute": attributes.NumericAttribute.build,
    "string_attribute": attributes.StringAttribute.build,
    "boolean_attribute": attributes.BooleanAttribute.build,
    "trace_state": attributes.TraceState.build,
    "rate_limiting": limits.RateLimiting.build,
    "bytes_limiting": limits.BytesLimiting.build,
    "and": combinators.And.build,
    "drop": combinators.Drop.build,
    "composite": combinators.Composite.build,
}


def build(cfg):
    return BUILDERS[cfg.type](cfg, build)
