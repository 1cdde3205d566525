"""FNV-1a over many trace ids at once (numpy, one pass per byte position).

The Collector's probabilistic sampler (hash_seed mode) hashes the 4 little-
endian seed bytes then the 16 trace id bytes with 32-bit FNV-1a; the tail
sampler's probabilistic policy hashes the salt string then the trace id
with 64-bit FNV-1a.  numpy's unsigned multiply wraps, which is exactly the
modular arithmetic FNV needs.
"""
from __future__ import annotations

import numpy as np

_FNV32_OFFSET, _FNV32_PRIME = 2166136261, 16777619
_FNV64_OFFSET, _FNV64_PRIME = 14695981039346656037, 1099511628211


def _fnv1a_scalar(data: bytes, h: int, prime: int, mask: int) -> int:
    for b in data:
        h = ((h ^ b) * prime) & mask
    return h


def _fnv1a_columns(prefix_state: int, cols: np.ndarray, dtype, prime: int) -> np.ndarray:
    h = np.full(cols.shape[0], prefix_state, dtype=dtype)
    p = dtype(prime)
    with np.errstate(over="ignore"):
        for j in range(cols.shape[1]):
            h ^= cols[:, j].astype(dtype)
            h *= p
    return h


def fnv1a32(prefix: bytes, data: np.ndarray) -> np.ndarray:
    """32-bit FNV-1a of ``prefix + row`` for each row of ``data`` ((n, k) uint8)."""
    state = _fnv1a_scalar(prefix, _FNV32_OFFSET, _FNV32_PRIME, 0xFFFFFFFF)
    return _fnv1a_columns(state, data, np.uint32, _FNV32_PRIME)


def fnv1a64(prefix: bytes, data: np.ndarray) -> np.ndarray:
    state = _fnv1a_scalar(prefix, _FNV64_OFFSET, _FNV64_PRIME, 0xFFFFFFFFFFFFFFFF)
    return _fnv1a_columns(state, data, np.uint64, _FNV64_PRIME)


def fnv1a64_state(prefix: bytes) -> int:
    """The 64-bit FNV-1a state after ``prefix`` (to continue per item)."""
    return _fnv1a_scalar(prefix, _FNV64_OFFSET, _FNV64_PRIME, 0xFFFFFFFFFFFFFFFF)


def fnv1a32_bytes(prefix: bytes, data: bytes) -> int:
    return _fnv1a_scalar(prefix + data, _FNV32_OFFSET, _FNV32_PRIME, 0xFFFFFFFF)


def hash_seed_randomness(hashed32: np.ndarray) -> np.ndarray:
    """The 56-bit randomness the Collector derives from a 14-bit FNV hash
    (``randomnessFromBytes``): its top 14 bits are ``2**14 - 1 - hashed``,
    so ``R >= T`` reproduces the legacy ``hashed < scaled rate`` test.  The
    middle bits mix the hash's top bits as the Collector does: it shifts by
    ``32 - 14`` (its variable is called ``unused18``, but the shift keeps the
    top 14); the same shift here keeps the ``rv:`` values it writes equal."""
    h = hashed32.astype(np.uint64)
    hashed = h & np.uint64(0x3FFF)
    rprime14 = np.uint64(0x3FFF) - hashed
    unused18 = h >> np.uint64(32 - 14)
    mixed28 = unused18 ^ (unused18 << np.uint64(10))
    return (rprime14 << np.uint64(42)) | (mixed28 << np.uint64(14)) | hashed
