"""Per-ring definitions: payloads written once and referenced by key.

Telemetry records refer to their resource and instrumentation scope by a
64-bit key instead of repeating them.  The definitions go to an append-only
side file next to the ring (``<ring>.meta``); the ring header's
``meta_bytes`` says how much of it is complete, published with a release
store after the bytes are written.  Because the file is never consumed,
a restarted consumer still finds every definition.

Entry: u64 key, u32 length, u32 reserved (0), payload, padding to 8 bytes.
"""
from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

ENTRY = struct.Struct("=QII")


def meta_path(ring_path: Path) -> Path:
    return ring_path.with_suffix(".meta")


def encode_entry(key: int, payload: bytes) -> bytes:
    pad = -(ENTRY.size + len(payload)) % 8
    return ENTRY.pack(key, len(payload), 0) + payload + b"\0" * pad


class MetaReader:
    """Consumer side: incrementally reads complete entries."""

    def __init__(self, ring_path: Path):
        self.path = meta_path(ring_path)
        self.offset = 0
        self.entries: dict[int, bytes] = {}
        self.errors = 0

    def refresh(self, committed: int) -> dict[int, bytes]:
        """Read entries up to ``committed`` bytes (the ring's meta_bytes)."""
        if committed <= self.offset:
            return self.entries
        try:
            # not through a symlink, not a FIFO: only the producer's own file
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            self.errors += 1
            self.offset = committed
            return self.entries
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.errors += 1
                self.offset = committed
                return self.entries
            blob = os.pread(fd, committed - self.offset, self.offset)
        finally:
            os.close(fd)
        pos = 0
        while pos + ENTRY.size <= len(blob):
            key, length, reserved = ENTRY.unpack_from(blob, pos)
            end = pos + ENTRY.size + length
            if reserved != 0 or end > len(blob):
                self.errors += 1   # corrupt: stop here, never read past it
                self.offset = committed
                return self.entries
            self.entries[key] = bytes(blob[pos + ENTRY.size:end])
            pos = end + (-(ENTRY.size + length) % 8)
        self.offset += pos
        return self.entries
