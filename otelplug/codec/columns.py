"""Span records of a ring batch as numpy columns.

The sidecar moves telemetry in batches of columns, never one Python object
per span: ``decode_span_columns(batch)`` reads only each record's fixed
prefix and name into the arrays below; the variable part (attributes,
events, links) is decoded per record on demand with ``columns.span(i)``.

The column arrays stay valid after the batch is committed; ``span(i)`` reads
the ring bytes and so only works before the batch is committed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SpanColumns:
    batch: object                 # the ring RecordBatch the rows come from
    row: np.ndarray               # int64: index of each span in the batch
    trace_id: np.ndarray          # (n, 16) uint8, big-endian bytes as in OTLP
    span_id: np.ndarray           # uint64 (the id as an integer)
    parent_span_id: np.ndarray    # uint64, 0 for root spans
    start_time_unix_nano: np.ndarray
    end_time_unix_nano: np.ndarray
    resource_key: np.ndarray      # uint64 definition keys (Producer.define)
    scope_key: np.ndarray
    flags: np.ndarray             # uint32, see otelplug.codec.types FLAG_*
    kind: np.ndarray              # uint8, OTLP numbering
    status_code: np.ndarray       # uint8, OTLP numbering
    name_id: np.ndarray           # int32 index into ``names``
    names: list                   # distinct span names of this batch
    attr_count: np.ndarray        # uint32
    event_count: np.ndarray
    link_count: np.ndarray
    invalid: int = 0              # span records too short to hold a prefix

    def __len__(self) -> int:
        return len(self.row)

    @property
    def name(self) -> np.ndarray:
        """Span names as an object array (materialises strings: for tests)."""
        return np.array(self.names, dtype=object)[self.name_id] if len(self) else np.array([], object)

    def trace_id_int(self, i: int) -> int:
        return int.from_bytes(self.trace_id[i].tobytes(), "big")

    def payload(self, i: int):
        return self.batch.payload(int(self.row[i]))

    def span(self, i: int):
        """Full decode of span ``i`` (before the batch is committed)."""
        from . import decode_span
        return decode_span(self.payload(i))
