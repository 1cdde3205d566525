"""Policies that look inside spans: attribute values and tracestate.

As upstream, resource attributes count too, resource first then each span
(``hasResourceOrSpanWithCondition``); with ``invert_match`` every resource
and span must pass (``invertHasResourceOrSpanWithCondition``) and the
decision is the deprecated InvertSampled / InvertNotSampled.  A byte search
for the key skips decoding traces that cannot match.
"""
from __future__ import annotations

import re
from collections import OrderedDict

from ..decision import Decision
from ....sampling import tracestate as ts
from ....sampling.attributes import key_needle
from .basic import Policy


def _groups(trace, ctx):
    """(resource attributes, spans) per resource, in order of appearance."""
    order, by = [], {}
    for s in trace.spans():
        if s.resource_key not in by:
            by[s.resource_key] = []
            order.append(s.resource_key)
        by[s.resource_key].append(s)
    return [(ctx.resource(k), by[k]) for k in order]


class _AttributePolicy(Policy):
    invert = False

    def __init__(self, key: str):
        self.key = key
        self.needle = key_needle(key)

    def resource_ok(self, attrs) -> bool:
        raise NotImplementedError

    def span_ok(self, attrs) -> bool:
        raise NotImplementedError

    def evaluate(self, trace, ctx):
        if not self.invert:
            if not trace.contains(self.needle) and not any(
                    self.key in ctx.resource(k) for k in ctx.trace_resources(trace)):
                return Decision.NOT_SAMPLED
            for rattrs, spans in _groups(trace, ctx):
                if self.resource_ok(rattrs):
                    return Decision.SAMPLED
                if any(self.span_ok(s.attributes) for s in spans):
                    return Decision.SAMPLED
            return Decision.NOT_SAMPLED
        for rattrs, spans in _groups(trace, ctx):
            if not self.resource_ok(rattrs) or not all(self.span_ok(s.attributes) for s in spans):
                return Decision.INVERT_NOT_SAMPLED
        return Decision.INVERT_SAMPLED


def _int(v):
    # pcommon Value.Int() is 0 for anything that is not an int
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


class NumericAttribute(_AttributePolicy):
    def __init__(self, cfg):
        c = cfg.numeric_attribute
        super().__init__(c.key)
        self.lo = c.min_value if c.min_value is not None else -(1 << 63)
        self.hi = c.max_value if c.max_value is not None else (1 << 63) - 1
        self.invert = c.invert_match

    def _match(self, attrs):
        return self.key in attrs and self.lo <= _int(attrs[self.key]) <= self.hi

    def resource_ok(self, attrs):
        return not self._match(attrs) if self.invert else self._match(attrs)

    span_ok = resource_ok


class StringAttribute(_AttributePolicy):
    def __init__(self, cfg):
        c = cfg.string_attribute
        super().__init__(c.key)
        self.invert = c.invert_match
        if c.enabled_regex_matching:
            self.patterns = [re.compile(v) for v in c.values]
            self.cache = OrderedDict()
            self.cache_size = c.cache_max_size if c.cache_max_size > 0 else 128
            self.matcher = self._regex
        else:
            self.values = {v for v in c.values if v}
            self.matcher = self.values.__contains__

    def _regex(self, s: str) -> bool:
        hit = self.cache.get(s)
        if hit is not None:
            self.cache.move_to_end(s)
            return hit
        hit = any(p.search(s) for p in self.patterns)   # Go's MatchString: unanchored
        self.cache[s] = hit
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return hit

    @staticmethod
    def _str(v):
        return v if isinstance(v, str) else ""   # pcommon Value.Str()

    def resource_ok(self, attrs):
        m = self.key in attrs and self.matcher(self._str(attrs[self.key]))
        return not m if self.invert else m

    def span_ok(self, attrs):
        v = self._str(attrs.get(self.key)) if self.key in attrs else ""
        m = bool(v) and self.matcher(v)
        return not m if self.invert else m


class BooleanAttribute(_AttributePolicy):
    def __init__(self, cfg):
        c = cfg.boolean_attribute
        super().__init__(c.key)
        self.value, self.invert = c.value, c.invert_match

    def resource_ok(self, attrs):
        if self.key not in attrs:
            return self.invert
        b = attrs[self.key] is True
        return (b != self.value) if self.invert else (b == self.value)

    span_ok = resource_ok


class TraceState(Policy):
    def __init__(self, cfg):
        c = cfg.trace_state
        self.key = c.key
        # a tracestate member (key=value) cannot exceed 256 characters
        self.values = {v for v in c.values if v and len(c.key) + len(v) < 256}
        self.needle = (c.key + "=").encode()

    def evaluate(self, trace, ctx):
        if not trace.contains(self.needle):
            return Decision.NOT_SAMPLED
        for s in trace.spans():
            if ts.get(s.trace_state, self.key) in self.values:
                return Decision.SAMPLED
        return Decision.NOT_SAMPLED
