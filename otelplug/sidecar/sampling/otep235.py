"""Consistent probability sampling, as OTEP 235 and the Collector's
``pkg/sampling`` define it.

A *threshold* T is a 56-bit integer: an item whose 56-bit *randomness* R
satisfies ``R >= T`` is kept, so the sampling probability is
``(2**56 - T) / 2**56``.  T = 0 keeps everything; T = 2**56 keeps nothing.
In tracestate T is written as ``th:`` followed by up to 14 hex digits with
trailing zeros removed (``th:c`` is 25%, ``th:0`` is 100%); explicit
randomness is ``rv:`` with exactly 14 hex digits.  When no ``rv`` is given,
R is the low 56 bits (last 7 bytes) of the trace id, which W3C Trace
Context level 2 requires to be random.
"""
from __future__ import annotations

import math

import numpy as np

MAX_ADJUSTED_COUNT = 1 << 56
NUM_HEX_DIGITS = 14
MIN_SAMPLING_PROBABILITY = 1.0 / MAX_ADJUSTED_COUNT
ALWAYS_SAMPLE = 0
NEVER_SAMPLE = MAX_ADJUSTED_COUNT
RANDOMNESS_MASK = MAX_ADJUSTED_COUNT - 1


class ProbabilityRangeError(ValueError):
    """The probability is outside [2**-56, 1]."""


def _round_half_away(x: float) -> int:
    # Go's math.Round, which pkg/sampling uses (Python's round() is banker's)
    return int(math.floor(x + 0.5))


def probability_to_threshold(prob: float, precision: int = 0) -> int:
    """The threshold for ``prob``, rounded to ``precision`` significant hex
    digits (0: full precision), like ``ProbabilityToThresholdWithPrecision``."""
    if not (MIN_SAMPLING_PROBABILITY <= prob <= 1.0):
        raise ProbabilityRangeError(f"sampling probability {prob!r} out of range [2**-56, 1]")
    scaled = _round_half_away(prob * MAX_ADJUSTED_COUNT)
    if precision == 0:
        return MAX_ADJUSTED_COUNT - scaled
    if prob == 1.0:
        return ALWAYS_SAMPLE
    # leading zeros of the rejection probability are obligatory digits
    reject = 1.0 - prob
    while reject * 16 < 1:
        reject *= 16
        precision += 1
    if precision > NUM_HEX_DIGITS:
        raise ProbabilityRangeError("sampling precision is too great for the range")
    rscaled = MAX_ADJUSTED_COUNT - scaled
    shift = 4 * (NUM_HEX_DIGITS - precision)
    if shift:
        rscaled = ((rscaled + (1 << (shift - 1))) >> shift) << shift
    return rscaled


def threshold_probability(threshold: int) -> float:
    return (MAX_ADJUSTED_COUNT - threshold) / MAX_ADJUSTED_COUNT


def adjusted_count(threshold: int) -> float:
    """``1 / threshold_probability``, as one division (0 for never-sample)."""
    if threshold >= MAX_ADJUSTED_COUNT:
        return 0.0
    return MAX_ADJUSTED_COUNT / (MAX_ADJUSTED_COUNT - threshold)


def tvalue(threshold: int) -> str:
    """``th`` encoding: 14 hex digits, trailing zeros removed; ``0`` for
    always-sample.  Never-sample has no encoding (it is never written)."""
    if threshold == ALWAYS_SAMPLE:
        return "0"
    if not 0 < threshold < MAX_ADJUSTED_COUNT:
        raise ValueError(f"threshold {threshold} has no t-value")
    return f"{threshold:014x}".rstrip("0")


def parse_tvalue(text: str) -> int:
    if not 0 < len(text) <= NUM_HEX_DIGITS:
        raise ValueError(f"invalid t-value {text!r}")
    return int(text, 16) << (4 * (NUM_HEX_DIGITS - len(text)))


def rvalue(randomness: int) -> str:
    return f"{randomness & RANDOMNESS_MASK:014x}"


def parse_rvalue(text: str) -> int:
    if len(text) != NUM_HEX_DIGITS:
        raise ValueError(f"invalid r-value {text!r}: must be 14 hex digits")
    return int(text, 16)


# -- vectorised over the trace_id column ((n, 16) uint8, big-endian) -------------
def trace_id_words(trace_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(high 64 bits, low 64 bits) of each trace id as uint64 arrays."""
    tid = np.ascontiguousarray(trace_id, dtype=np.uint8).reshape(-1, 16)
    words = tid.view(">u8").astype(np.uint64)
    return words[:, 0], words[:, 1]


def trace_id_randomness(trace_id: np.ndarray) -> np.ndarray:
    """R per trace id: its low 56 bits (``TraceIDToRandomness``)."""
    return trace_id_words(trace_id)[1] & np.uint64(RANDOMNESS_MASK)


def trace_id_valid(trace_id: np.ndarray) -> np.ndarray:
    hi, lo = trace_id_words(trace_id)
    return (hi | lo) != 0
