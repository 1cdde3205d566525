"""A buffered trace: its span records (copied out of ring memory) and the
summary the cheap policies need, kept up to date batch by batch with numpy.

Policies that look inside spans (attributes, tracestate) call ``spans()``,
which decodes the trace's records once, when the decision is made; a byte
search (``contains``) lets them skip the decode when the key they want
does not occur in the trace at all.
"""
from __future__ import annotations

import numpy as np

from otelplug import codec

# Python overhead of one buffered trace (object, key, ordered-dict entry,
# lists) and of each piece (bytes header, lengths array), added to its
# record bytes for the memory accounting; measured with tracemalloc on
# CPython 3.11 (tests/sidecar/test_sampling_tail.py checks it stays an
# upper bound)
TRACE_OVERHEAD = 700
PIECE_OVERHEAD = 150


class Trace:
    __slots__ = ("trace_id", "arrival", "span_count", "nbytes", "min_start", "max_end",
                 "status_mask", "pieces", "lengths", "decided", "decided_at", "_spans",
                 "dropped_spans", "memory")

    def __init__(self, trace_id: bytes, arrival: float):
        self.trace_id = trace_id
        self.arrival = arrival
        self.span_count = 0
        self.nbytes = 0
        self.min_start = 0
        self.max_end = 0
        self.status_mask = 0
        self.pieces: list = []         # record bytes, back to back
        self.lengths: list = []        # per piece: its record lengths as uint32 bytes
        self.decided = None            # None pending, True sampled, False not sampled
        self.decided_at = 0.0
        self._spans = None
        self.dropped_spans = 0
        self.memory = TRACE_OVERHEAD   # accounted bytes (see TRACE_OVERHEAD)

    def add(self, piece: bytes, lengths: bytes, count: int, start: int, end: int,
            status_mask: int) -> None:
        self.pieces.append(piece)
        self.lengths.append(lengths)
        self.span_count += count
        self.nbytes += len(piece)
        self.memory += len(piece) + len(lengths) + PIECE_OVERHEAD
        if not self.min_start or start < self.min_start:
            self.min_start = start
        if end > self.max_end:
            self.max_end = end
        self.status_mask |= status_mask
        self._spans = None

    def record_lengths(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.lengths), "<u4")

    def release(self) -> None:
        """Forget the span data (after the decision); the summary stays."""
        self.pieces, self.lengths, self._spans = [], [], None
        self.memory = TRACE_OVERHEAD

    def contains(self, needle: bytes) -> bool:
        return any(needle in p for p in self.pieces)

    def payloads(self):
        for piece, lens in zip(self.pieces, self.lengths):
            mv = memoryview(piece)
            pos = 0
            for n in np.frombuffer(lens, "<u4").tolist():
                yield mv[pos:pos + n]
                pos += n

    def spans(self) -> list:
        if self._spans is None:
            self._spans = [codec.decode_span(p) for p in self.payloads()]
        return self._spans
