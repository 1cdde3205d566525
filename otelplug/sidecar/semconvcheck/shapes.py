"""Span shape hashes: the pure-Python reference of
``otelplug._ext.span_shape`` (``cython_ext/span_shape.pyx``), computed from
decoded spans (``otelplug.codec.model.SpanData``).

A span's *shape* is what the ``semconv`` engine's cache key holds (see
``engine``): name, kind, per attribute (in order) the key, the
Python type of the value, ``infer_type`` of arrays and the value itself for
keys in ``value_keys`` (the registry's enum attributes); the same for every
event (name + attributes) and link (attributes).  The hash is a keyed
multiply-fold hash (wyhash's ``mum``) over a canonical, prefix-free stream
of 64-bit words; strings enter the stream as their own hash (length, then
8-byte little-endian words, the last zero-padded).

Collisions: the secrets come from a seed (the engine draws a random one
per process), so shapes that collide cannot be crafted without knowing it;
for non-adversarial shapes a pair collides with probability ~2^-64, so with
``S`` cached shapes and ``N`` distinct shapes ever looked up the chance of
one wrong cache hit is about ``S * N / 2^64`` (10^4 cached, 10^9 looked up:
~5e-7 over the process's life).  The cache trusts a hash hit.

``span_shape(span, value_keys, seed)`` returns 0 where the native function
does for well-formed records: an enum attribute holding a map (or an array
with a map inside), which the engine's key cannot hash either.
"""
from __future__ import annotations

import math
import struct
from typing import Iterable

from otelplug.semconv.livecheck import infer_type

M64 = (1 << 64) - 1
P0, P1, P2, P3, P4 = (0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3,
                      0x589965cc75374cc3, 0x1d8e4e27c47d124f)
NAN = 0x7ff8000000000000
W_SPAN, W_END, ENUM_FLAG = 0x5350414e, 0x454e44, 0x100
PT_NONE, PT_STR, PT_BOOL, PT_INT, PT_FLOAT, PT_BYTES, PT_TUPLE, PT_DICT = 0, 1, 2, 4, 5, 6, 7, 8
#: infer_type of an array -> its code (None: empty)
IT = {None: 0, "boolean[]": 1, "int[]": 2, "double[]": 3, "string[]": 4, "any": 5, "any[]": 6}


class Unhashable(Exception):
    pass


def mum(a: int, b: int) -> int:
    r = (a & M64) * (b & M64)
    return (r ^ (r >> 64)) & M64


class Secrets:
    __slots__ = ("s1", "s2", "s3")

    def __init__(self, seed: int = 0):
        self.s1 = mum(seed ^ P0, P1)
        self.s2 = mum(seed ^ P2, P3)
        self.s3 = mum(seed ^ P4, P1)

    def absorb(self, h: int, w: int) -> int:
        return mum((w & M64) ^ self.s1, h ^ self.s2)

    def str_hash(self, data: bytes) -> int:
        """Length-seeded, one ``mum`` per 16-byte block (the last one
        zero-padded; an empty string is one zero block)."""
        h = len(data) ^ self.s3
        for i in range(0, max(len(data), 1), 16):
            a = int.from_bytes(data[i:i + 8].ljust(8, b"\0"), "little")
            b = int.from_bytes(data[i + 8:i + 16].ljust(8, b"\0"), "little")
            h = mum(a ^ self.s1, b ^ self.s2 ^ h)
        return h


def _utf8(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def _ptype(v) -> int:
    if v is None:
        return PT_NONE
    if isinstance(v, bool):
        return PT_BOOL
    if isinstance(v, int):
        return PT_INT
    if isinstance(v, float):
        return PT_FLOAT
    if isinstance(v, str):
        return PT_STR
    if isinstance(v, (bytes, bytearray)):
        return PT_BYTES
    if isinstance(v, dict):
        return PT_DICT
    return PT_TUPLE


def _value(k: Secrets, h: int, v) -> int:
    t = _ptype(v)
    h = k.absorb(h, t)
    if t == PT_STR:
        return k.absorb(h, k.str_hash(_utf8(v)))
    if t == PT_BYTES:
        return k.absorb(h, k.str_hash(bytes(v)))
    if t == PT_INT:
        return k.absorb(h, v & M64)
    if t == PT_FLOAT:
        bits = NAN if math.isnan(v) else int.from_bytes(struct.pack("<d", v), "little")
        return k.absorb(h, bits)
    if t == PT_BOOL:
        return k.absorb(h, 1 if v else 0)
    if t == PT_NONE:
        return h
    if t == PT_DICT:
        raise Unhashable
    h = k.absorb(h, len(v))
    for x in v:
        h = _value(k, h, x)
    return h


def _attrs(k: Secrets, h: int, attrs, value_keys) -> int:
    h = k.absorb(h, len(attrs))
    for key, v in attrs.items():
        kh = k.str_hash(_utf8(key))
        t = _ptype(v)
        # one word per attribute: the key's hash + its type word * P4
        if key in value_keys:
            h = k.absorb(h, kh + (ENUM_FLAG | t) * P4)
            h = _value(k, h, v)
        elif t == PT_TUPLE:
            h = k.absorb(h, kh + (t | (IT[infer_type(v)] << 4)) * P4)
        else:
            h = k.absorb(h, kh + t * P4)
    return h


def span_shape(span, value_keys, seed: int = 0, secrets: Secrets | None = None) -> int:
    """The shape hash of one decoded span (0: unhashable)."""
    k = secrets or Secrets(seed)
    h = k.absorb(k.s3, W_SPAN)
    h = k.absorb(h, k.str_hash(_utf8(span.name)))
    h = k.absorb(h, span.kind)
    try:
        h = _attrs(k, h, span.attributes, value_keys)
        h = k.absorb(h, len(span.events))
        for e in span.events:
            h = k.absorb(h, k.str_hash(_utf8(e.name)))
            h = _attrs(k, h, e.attributes, value_keys)
        h = k.absorb(h, len(span.links))
        for lk in span.links:
            h = _attrs(k, h, lk.attributes, value_keys)
    except Unhashable:
        return 0
    h = k.absorb(h, W_END)
    return h or 1


def span_shapes(spans: Iterable, value_keys, seed: int = 0) -> list[int]:
    """``span_shape`` of each span (the native ``span_shapes`` on their records)."""
    k = Secrets(seed)
    keys = frozenset(value_keys)
    return [span_shape(s, keys, secrets=k) for s in spans]
