"""The ring segment layout, mirrored from ``cython_ext/ring_layout.h``.

The C header is the source of truth; this module gives the same numbers to
the pure-Python reference ring and to read-only inspectors (``otelplug top``).
``tests/ring/test_layout.py`` checks that both agree.
"""
from __future__ import annotations

import struct

MAGIC = 0x31474E524C50544F  # b"OTPLRNG1" read as little-endian u64
VERSION = 1
HEADER_SIZE = 4096
REC_HEADER = 16
REC_ALIGN = 8
TYPE_PAD = 0
FLAG_CLOSED = 1

# Field offsets inside the 4096-byte header (see otp_ring_header).
FIELDS = {
    "magic": (0, "Q"),
    "version": (8, "I"),
    "header_size": (12, "I"),
    "capacity": (16, "Q"),
    "max_record": (24, "Q"),
    "pid": (32, "I"),
    "flags": (36, "I"),
    "created_ns": (40, "Q"),
    "start_pos": (48, "Q"),
    "meta_bytes": (56, "Q"),
    "write_pos": (64, "Q"),
    "attempted": (72, "Q"),
    "committed": (80, "Q"),
    "committed_bytes": (88, "Q"),
    "dropped_full": (96, "Q"),
    "dropped_full_bytes": (104, "Q"),
    "oversize": (112, "Q"),
    "oversize_bytes": (120, "Q"),
    "read_pos": (128, "Q"),
    "delivered": (136, "Q"),
    "delivered_bytes": (144, "Q"),
    "corrupt": (152, "Q"),
    "corrupt_bytes": (160, "Q"),
    "next_seq": (168, "Q"),
    "consumer_pid": (176, "I"),
    "corrupt_records": (184, "Q"),
    "waits": (192, "Q"),
    "wait_ns": (200, "Q"),
}

_M64 = (1 << 64) - 1


class RingTruncated(ValueError):
    """The ring file shrank under its reader (truncated by someone): the
    consumer drops the ring and reports it."""


def header_check(length: int, rtype: int, seq: int) -> int:
    """Same 16-bit check as ``otp_header_check`` in the C header."""
    h = ((length << 8) ^ rtype ^ ((seq * 0x9E3779B97F4A7C15) & _M64)) & _M64
    h ^= h >> 29
    h = (h * 0xBF58476D1CE4E5B9) & _M64
    h ^= h >> 32
    return ((h ^ (h >> 16)) & 0xFFFF) ^ 0x4F54


def record_span(length: int) -> int:
    """Bytes a record of ``length`` payload bytes occupies in the ring."""
    return (REC_HEADER + length + REC_ALIGN - 1) & ~(REC_ALIGN - 1)


REC_STRUCT = struct.Struct("=IBBHQ")  # length, type, flags, check, seq


def lost_records(found_seq: int, expected_seq: int, capacity: int) -> int:
    """Records lost between the expected sequence number and the one a
    resynchronised reader found: the gap, when it is plausible (no more
    records than fit in the ring); an implausible gap (a garbage header that
    passed the check) counts as one lost record: one drop event, whose
    bytes the reader counts separately (corrupt_bytes)."""
    gap = (found_seq - expected_seq) & _M64
    return gap if gap <= capacity // REC_HEADER else 1


def read_field(buf, name: str) -> int:
    off, fmt = FIELDS[name]
    return struct.unpack_from("=" + fmt, buf, off)[0]


def read_header(buf) -> dict:
    """All header fields of a mapped segment as a dict (a racy snapshot)."""
    return {name: read_field(buf, name) for name in FIELDS}
