"""Reference for ``decode_span_columns``: the same columns, built with a
Python loop over the records (for tests and when the extension is absent)."""
from __future__ import annotations

import struct

import numpy as np

from . import types as t
from .columns import SpanColumns

# the span prefix up to the link count (ids re-read big-endian below)
_PREFIX = struct.Struct("<16sQQQQQQIBB2xI12xIII")
assert _PREFIX.size == t.SPAN_LINK_COUNT_AT + 4


def decode_span_columns(batch, rtype: int = t.SPAN) -> SpanColumns:
    rows, fields, name_ids = [], [], []
    names: dict[bytes, int] = {}
    invalid = 0
    data = batch.data
    for i in range(len(batch)):
        if int(batch.types[i]) != rtype:
            continue
        off, length = int(batch.offsets[i]), int(batch.lengths[i])
        if length < t.SPAN_PREFIX or off + length > len(data):
            invalid += 1
            continue
        rec = bytes(data[off:off + length])
        (tid, sid, pid, start, end, rkey, skey, flags, kind, status, name_len, nattr, nev,
         nlink) = _PREFIX.unpack_from(rec)
        if name_len > length - t.SPAN_PREFIX:
            invalid += 1
            continue
        sid = int.from_bytes(rec[t.SPAN_SPAN_ID_AT:t.SPAN_SPAN_ID_AT + 8], "big")
        pid = int.from_bytes(rec[t.SPAN_PARENT_SPAN_ID_AT:t.SPAN_PARENT_SPAN_ID_AT + 8], "big")
        name = rec[t.SPAN_PREFIX:t.SPAN_PREFIX + name_len]
        rows.append(i)
        fields.append((tid, sid, pid, start, end, rkey, skey, flags, kind, status, nattr, nev,
                       nlink))
        name_ids.append(names.setdefault(name, len(names)))
    n = len(rows)

    def col(j, dtype):
        return np.array([f[j] for f in fields], dtype=dtype)

    trace = np.frombuffer(b"".join(f[0] for f in fields), np.uint8).reshape(n, 16).copy()
    return SpanColumns(
        batch=batch, row=np.array(rows, np.int64), trace_id=trace, span_id=col(1, np.uint64),
        parent_span_id=col(2, np.uint64), start_time_unix_nano=col(3, np.uint64),
        end_time_unix_nano=col(4, np.uint64), resource_key=col(5, np.uint64),
        scope_key=col(6, np.uint64), flags=col(7, np.uint32), kind=col(8, np.uint8),
        status_code=col(9, np.uint8), name_id=np.array(name_ids, np.int32),
        names=[b.decode("utf-8", "surrogatepass") for b in names],
        attr_count=col(10, np.uint32), event_count=col(11, np.uint32),
        link_count=col(12, np.uint32), invalid=invalid)
