"""Span and log record fields read with numpy straight from the buffer, and
the tracestate splice.

``decode_span_columns`` gives the fixed prefix; the tracestate sits right
after the span name as a nullable string (varint ``len + 1``, 0 for none;
the encoders write ``\\x01`` for an empty one).  A sampler that only adds
``ot=th:...`` to kept spans does not need the full decode/re-encode of
``rewrite.py``: it copies the bytes before the tracestate, writes the new
one, and copies the rest -- three slices per span.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otelplug import codec
from otelplug.codec import types as wire

from otelplug.codec.recordset import RecordSet



def span_columns(records: RecordSet):
    """The codec's span columns of ``records``.  Not memoised on the set:
    the columns point back at their batch, and that cycle would keep the
    batch (and the ring memory it views) alive until the garbage
    collector runs."""
    return codec.decode_span_columns(records)


def buffer_array(records: RecordSet) -> np.ndarray:
    return np.frombuffer(records.buf, dtype=np.uint8)


def gather(records: RecordSet, at: int, width: int) -> np.ndarray:
    """(n, width) uint8: bytes ``[at, at + width)`` of each record."""
    buf = buffer_array(records)
    idx = records.offsets.astype(np.int64)[:, None] + (at + np.arange(width, dtype=np.int64))
    return buf[idx]


def log_trace_ids(records: RecordSet) -> np.ndarray:
    """(n, 16) trace ids of log records (the first 16 bytes of each)."""
    return gather(records, 0, 16)


@dataclass
class TraceStateInfo:
    pos: np.ndarray        # int64: offset of the tracestate field inside each record
    size: np.ndarray       # int64: bytes the field takes (varint + text)
    empty: np.ndarray      # bool: no tracestate (or an empty one)


def tracestate_info(records: RecordSet) -> TraceStateInfo:
    """Where each span's tracestate is; vectorised except for the rare
    non-empty ones, whose varint is read in Python."""
    n = len(records)
    if n == 0:
        z = np.zeros(0, np.int64)
        return TraceStateInfo(z, z, np.zeros(0, bool))
    name_len = np.ascontiguousarray(gather(records, wire.SPAN_NAME_LEN_AT, 4)).view("<u4")[:, 0]
    pos = wire.SPAN_PREFIX + name_len.astype(np.int64)
    buf = buffer_array(records)
    marker = buf[records.offsets.astype(np.int64) + pos]
    empty = marker <= 1
    size = np.ones(n, np.int64)
    for i in np.flatnonzero(~empty).tolist():
        start = int(records.offsets[i]) + int(pos[i])
        v, nb = _varint(buf, start)
        size[i] = nb + (v - 1)
    return TraceStateInfo(pos, size, empty)


def _varint(buf, at: int) -> tuple[int, int]:
    v, shift, i = 0, 0, at
    while True:
        b = int(buf[i])
        v |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return v, i - at
        shift += 7


def read_tracestate(records: RecordSet, info: TraceStateInfo, i: int) -> str:
    if info.empty[i]:
        return ""
    start = int(records.offsets[i]) + int(info.pos[i])
    buf = buffer_array(records)
    v, nb = _varint(buf, start)
    return bytes(buf[start + nb:start + nb + v - 1]).decode("utf-8", "surrogatepass")


def encode_nstr(text: str) -> bytes:
    b = text.encode("utf-8", "surrogatepass")
    n = len(b) + 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + b


def splice_tracestates(records: RecordSet, info: TraceStateInfo, new: list) -> RecordSet:
    """A set with the same records, where ``new[i]`` (encoded with
    ``encode_nstr``; None keeps it) replaces record i's tracestate.
    The result owns its bytes; acks, defs and item counts carry over."""
    mv = memoryview(records.buf)
    parts = []
    lengths = records.lengths.astype(np.int64).copy()
    offs = records.offsets.tolist()
    lens = records.lengths.tolist()
    pos = info.pos.tolist()
    size = info.size.tolist()
    for i, enc in enumerate(new):
        o = offs[i]
        if enc is None:
            parts.append(mv[o:o + lens[i]])
            continue
        p = o + pos[i]
        e = p + size[i]
        parts.append(mv[o:p])
        parts.append(enc)
        parts.append(mv[e:o + lens[i]])
        lengths[i] += len(enc) - size[i]
    return RecordSet.packed(records.signal, b"".join(parts), lengths, records.defs, records.acks,
                            records.items)


def concat_owned(pieces: list, lengths: list, signal: str, defs, acks=()) -> RecordSet:
    """One set from byte pieces holding whole records back to back, with
    each piece's record lengths (numpy arrays)."""
    lens = np.concatenate(lengths) if lengths else np.zeros(0, np.uint32)
    return RecordSet.packed(signal, b"".join(pieces), lens, defs, acks)


def records_containing(records: RecordSet, needle: bytes) -> np.ndarray:
    """Mask of records whose bytes contain ``needle``, found with one regex
    scan of the batch's byte range (no Python work per record; the usual
    answer, "none", costs a memchr-speed scan)."""
    import re
    n = len(records)
    mask = np.zeros(n, bool)
    if n == 0 or not needle:
        return mask
    offs = records.offsets.astype(np.int64)
    ends = offs + records.lengths.astype(np.int64)
    order = np.argsort(offs, kind="stable")
    so, se = offs[order], ends[order]
    lo, hi = int(so[0]), int(se.max())
    pat = re.compile(re.escape(needle))
    for m in pat.finditer(memoryview(records.buf).cast("B"), lo, hi):
        j = int(np.searchsorted(so, m.start(), side="right")) - 1
        if j >= 0 and m.end() <= se[j]:
            mask[order[j]] = True
    return mask
