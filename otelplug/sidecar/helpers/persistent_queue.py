"""An on-disk FIFO of serialised batches for exporters' sending queues.

One file per batch, named by a zero-padded sequence number and written
atomically (write to a temporary name, fsync, check, rename, fsync the
directory), so a sidecar killed at any instant leaves only whole entries.
Entries survive restarts and long outages; an entry is deleted only once it
was sent or given up.

Each entry starts with a header (magic, CRC-32 and length of the payload,
item count).  ``put`` returns only once the whole entry is on disk and its
size checked: a short write (a full disk, a file size limit) raises
``QueueWriteError`` and leaves nothing behind, so the caller refuses the
data instead of acknowledging something it cannot read back.  ``take``
checks length and checksum; an entry that fails is reported as ``Corrupt``
with the item count from its header (when that much is readable), so the
loss is counted.
"""
from __future__ import annotations

import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

_HEAD = struct.Struct("=4sIQQ")      # magic, crc32(payload), len(payload), items
_MAGIC = b"OPQ1"
_LEGACY_MAGIC = b"OPRS"               # entries written before the header existed


class QueueWriteError(OSError):
    """The entry could not be written completely; nothing was kept."""


@dataclass
class Corrupt:
    """A taken entry that failed its checks (``items``: from the header, or 0)."""
    reason: str
    items: int = 0


class PersistentQueue:
    def __init__(self, directory: Path, capacity: int):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.capacity = capacity
        self._lock = threading.Lock()
        for tmp in self.dir.glob("*.tmp"):   # a write cut short by a crash
            tmp.unlink(missing_ok=True)
        self._ready = sorted(int(p.stem) for p in self.dir.glob("*.batch"))
        self._taken: set[int] = set()
        self._next = (self._ready[-1] + 1) if self._ready else 0

    def _path(self, seq: int) -> Path:
        return self.dir / f"{seq:020d}.batch"

    def __len__(self) -> int:
        return len(self._ready)

    def put(self, blob: bytes, items: int = 0) -> bool:
        """False when full.  Returns only after the entry is durable;
        raises QueueWriteError (nothing kept) when it cannot be."""
        with self._lock:
            if len(self._ready) + len(self._taken) >= self.capacity:
                return False
            seq = self._next
            self._next += 1
        head = _HEAD.pack(_MAGIC, zlib.crc32(blob), len(blob), items)
        tmp = self.dir / f"{seq:020d}.tmp"
        try:
            _write_file(tmp, head, blob)
            os.rename(tmp, self._path(seq))
            _fsync_dir(self.dir)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self._path(seq).unlink(missing_ok=True)
            raise QueueWriteError(exc.errno, f"persistent queue entry {tmp.name}: {exc.strerror or exc}") \
                from None
        with self._lock:
            self._ready.append(seq)
            self._ready.sort()
        return True

    def take(self):
        """(ticket, payload bytes or Corrupt) of the oldest entry, or None."""
        with self._lock:
            while self._ready:
                seq = self._ready.pop(0)
                try:
                    raw = self._path(seq).read_bytes()
                except FileNotFoundError:
                    continue
                self._taken.add(seq)
                return seq, _check(raw)
        return None

    def done(self, ticket: int) -> None:
        with self._lock:
            self._taken.discard(ticket)
        self._path(ticket).unlink(missing_ok=True)

    def release(self, ticket: int) -> None:
        """Put a taken entry back (shutdown before it could be sent)."""
        with self._lock:
            self._taken.discard(ticket)
            self._ready.append(ticket)
            self._ready.sort()


def _write_file(path: Path, *parts: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        expected = 0
        for part in parts:
            view = memoryview(part)
            expected += len(view)
            while view:    # os.write may write less than asked (a full disk)
                n = os.write(fd, view)
                if n <= 0:
                    raise OSError(28, "no progress writing (disk full?)")
                view = view[n:]
        os.fsync(fd)
        size = os.fstat(fd).st_size
        if size != expected:
            raise OSError(5, f"wrote {size} of {expected} bytes")
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    # the rename is durable only once the directory itself is synced
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check(raw: bytes):
    if raw[:4] == _LEGACY_MAGIC:
        return raw
    if len(raw) < _HEAD.size:
        return Corrupt(f"{len(raw)} bytes, shorter than the entry header")
    magic, crc, length, items = _HEAD.unpack_from(raw, 0)
    if magic != _MAGIC:
        return Corrupt("not a queue entry (bad magic)")
    payload = memoryview(raw)[_HEAD.size:]
    if len(payload) != length:
        return Corrupt(f"payload of {len(payload)} bytes, header says {length}", items)
    if zlib.crc32(payload) != crc:
        return Corrupt("checksum mismatch", items)
    return payload
