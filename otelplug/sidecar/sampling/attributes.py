"""Attribute lookups for policies and priority rules.

Decoding a span's attributes is a per-span Python cost, so rules that look
at one key first check, with a bytes search per record, whether the key's
encoded bytes (varint length + UTF-8) occur in the record at all; only
records that contain them are decoded.  Resource attributes come from the
definitions, decoded once per resource key.
"""
from __future__ import annotations

from otelplug import codec


def key_needle(key: str) -> bytes:
    # attribute keys are written as varint length + bytes: the same as a
    # nullable string's encoding minus one on the length
    b = key.encode("utf-8", "surrogatepass")
    return _varint(len(b)) + b


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class ResourceAttributes:
    """Decoded resource attributes per definition key (memoised)."""

    def __init__(self):
        self._cache: dict[int, dict] = {}

    def get(self, defs, key: int) -> dict:
        attrs = self._cache.get(key)
        if attrs is None:
            payload = defs.get(key)
            attrs = {}
            if payload is not None:
                try:
                    attrs = codec.decode_definition(payload).attributes
                except Exception:
                    attrs = {}
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = attrs
        return attrs


def span_attribute(payload, needle: bytes, key: str):
    """``(found, value)`` of one span attribute, decoding only if the key's
    bytes occur in the record."""
    if needle not in payload:
        return False, None
    attrs = codec.decode_span(payload).attributes
    if key in attrs:
        return True, attrs[key]
    return False, None
