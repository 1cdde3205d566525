"""RecordSet: the batch of records one signal moves in (sidecar pipelines,
OTLP translation, benchmarks).

A RecordSet is a view, not a list of objects: a buffer (ring memory, or
bytes of its own), numpy columns with each record's payload offset and
length, the definitions (resources, scopes) its records refer to by key,
and the delivery acks of the data it came from (objects with
``settle(ok)``, ``otelplug.sidecar.ack.Ack``).  Selecting records is a
numpy mask over the columns; the bytes are not touched.  Signal-specific
columns (span ids, times, names) are decoded from the same bytes by the
codec when a processor asks for them.  It lives in the codec layer so that
everything above (otlp, sidecar) depends down on it, never sideways.
"""
from __future__ import annotations

import struct
from typing import Mapping

import numpy as np

from . import types as wire

#: which ring record type carries each signal
RECORD_TYPE = {"traces": wire.SPAN, "metrics": wire.METRIC, "logs": wire.LOG}
_HEAD = struct.Struct("=4sIIQ")   # magic, version, signal index, record count
_MAGIC = b"OPRS"
SIGNAL_INDEX = {"traces": 0, "metrics": 1, "logs": 2}
SIGNAL_BY_INDEX = {v: k for k, v in SIGNAL_INDEX.items()}


class RecordSet:
    __slots__ = ("signal", "buf", "offsets", "lengths", "defs", "acks", "items", "_cache", "refusals")

    def __init__(self, signal: str, buf, offsets, lengths, defs: Mapping[int, bytes],
                 acks=(), items: int | None = None):
        self.signal = signal
        self.buf = buf
        self.offsets = np.asarray(offsets, dtype=np.uint64)
        self.lengths = np.asarray(lengths, dtype=np.uint32)
        self.defs = defs
        self.acks = tuple(acks)
        # telemetry items (spans, log records, metric data points); for
        # metrics a record holds several points, so the codec fills this in
        self.items = len(self.offsets) if items is None else items
        self._cache = {}
        # times a consumer refused this very set: a sender that keeps it and
        # offers it again (batch) makes the next refusal a retry, counted apart
        self.refusals = 0

    def __len__(self) -> int:
        return len(self.offsets)

    @classmethod
    def packed(cls, signal: str, buf, lengths, defs: Mapping[int, bytes], acks=(),
               items: int | None = None) -> "RecordSet":
        """A set over ``buf`` holding records of ``lengths`` back to back."""
        lengths = np.asarray(lengths, dtype=np.uint32)
        offsets = np.zeros(len(lengths), dtype=np.uint64)
        if len(lengths) > 1:
            offsets[1:] = np.cumsum(lengths[:-1], dtype=np.uint64)
        return cls(signal, buf, offsets, lengths, defs, acks, items)

    @classmethod
    def from_parts(cls, signal: str, parts, defs: Mapping[int, bytes], acks=(),
                   items: int | None = None) -> "RecordSet":
        """A set owning one buffer with ``parts`` (encoded records, any
        bytes-like) as its records, in order."""
        lengths = np.fromiter((len(p) for p in parts), dtype=np.uint32, count=len(parts))
        return cls.packed(signal, b"".join(parts), lengths, defs, acks, items)

    # the RecordBatch interface the codec's column decoders read
    @property
    def data(self):
        return self.buf

    @property
    def types(self):
        return self.cached("types", lambda rs: np.full(len(rs), RECORD_TYPE[rs.signal], np.uint8))

    def payload(self, i: int):
        off = int(self.offsets[i])
        return memoryview(self.buf)[off:off + int(self.lengths[i])]

    def payloads(self):
        mv = memoryview(self.buf)
        for off, n in zip(self.offsets.tolist(), self.lengths.tolist()):
            yield mv[off:off + n]

    def cached(self, key, make):
        """Memoise a derived view (decoded columns) on this set."""
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = make(self)
        return v

    def select(self, mask, items: int | None = None) -> "RecordSet":
        """The records where ``mask`` is true (or at these indices), same
        buffer, same acks."""
        return RecordSet(self.signal, self.buf, self.offsets[mask], self.lengths[mask],
                         self.defs, self.acks, items)

    def with_acks(self, acks) -> "RecordSet":
        return RecordSet(self.signal, self.buf, self.offsets, self.lengths, self.defs,
                         acks, self.items)

    def detach(self) -> "RecordSet":
        """A copy that owns its bytes (no longer tied to ring memory)."""
        return RecordSet.from_bytes(self.to_bytes(), self.acks)

    def settle(self, ok: bool = True) -> None:
        # memoised columns refer back to this set (lazy per-record decode):
        # drop them once the data is done with, so ring memory is not kept
        # alive by a reference cycle until the garbage collector runs
        self._cache.clear()
        for ack in self.acks:
            ack.settle(ok)

    @staticmethod
    def concat(sets: list["RecordSet"]) -> "RecordSet":
        """One set holding every record of ``sets`` (copied into one buffer),
        carrying all their acks."""
        if len(sets) == 1:
            return sets[0]
        signal = sets[0].signal
        parts, offsets, lengths, defs, acks = [], [], [], {}, []
        pos = 0
        items = 0
        for s in sets:
            mv = memoryview(s.buf)
            if len(s.offsets):
                lo = int(s.offsets.min())
                hi = int((s.offsets + s.lengths).max())
                if hi - lo <= 2 * int(s.lengths.sum(dtype=np.uint64)) + 4096:
                    # the records lie close together (a ring batch: only
                    # record headers between them): copy the whole stretch
                    # in one slice and shift the offsets, instead of a
                    # Python step per record (~20% of the sidecar's CPU)
                    parts.append(mv[lo:hi])
                    offsets.append(s.offsets - np.uint64(lo) + np.uint64(pos))
                    lengths.append(s.lengths)
                    pos += hi - lo
                else:
                    offs = []
                    for off, n in zip(s.offsets.tolist(), s.lengths.tolist()):
                        parts.append(mv[off:off + n])
                        offs.append(pos)
                        pos += n
                    offsets.append(np.array(offs, dtype=np.uint64))
                    lengths.append(s.lengths)
            defs.update(s.defs)
            acks.extend(s.acks)
            items += s.items
        return RecordSet(signal, b"".join(parts),
                         np.concatenate(offsets) if offsets else [],
                         np.concatenate(lengths) if lengths else [], defs, acks, items)

    def to_bytes(self) -> bytes:
        """Self-contained serialisation (persistent queue, tests)."""
        out = [_HEAD.pack(_MAGIC, 1, SIGNAL_INDEX[self.signal], len(self)),
               struct.pack("=QI", self.items, len(self.defs))]
        for k, v in self.defs.items():
            out.append(struct.pack("=QI", k, len(v)))
            out.append(bytes(v))
        mv = memoryview(self.buf)
        for off, n in zip(self.offsets.tolist(), self.lengths.tolist()):
            out.append(struct.pack("=I", n))
            out.append(mv[off:off + n])
        return b"".join(out)

    @staticmethod
    def from_bytes(blob: bytes, acks=()) -> "RecordSet":
        """Inverse of to_bytes; raises ValueError on anything malformed."""
        try:
            magic, version, sig, count = _HEAD.unpack_from(blob, 0)
            if magic != _MAGIC or version != 1 or sig not in SIGNAL_BY_INDEX:
                raise ValueError("not a serialised RecordSet")
            pos = _HEAD.size
            items, ndefs = struct.unpack_from("=QI", blob, pos)
            pos += 12
            defs = {}
            for _ in range(ndefs):
                k, n = struct.unpack_from("=QI", blob, pos)
                pos += 12
                if pos + n > len(blob):
                    raise ValueError("truncated definition")
                defs[k] = bytes(blob[pos:pos + n])
                pos += n
            offsets = np.empty(count, dtype=np.uint64)
            lengths = np.empty(count, dtype=np.uint32)
            for i in range(count):
                (n,) = struct.unpack_from("=I", blob, pos)
                pos += 4
                if pos + n > len(blob):
                    raise ValueError("truncated record")
                offsets[i] = pos
                lengths[i] = n
                pos += n
        except struct.error as exc:
            raise ValueError(f"malformed RecordSet: {exc}") from None
        return RecordSet(SIGNAL_BY_INDEX[sig], blob, offsets, lengths, defs, acks, items)
