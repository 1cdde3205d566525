"""An on-disk FIFO of serialised batches for exporters' sending queues.

One file per batch, named by a zero-padded sequence number and written
atomically (write to a temporary name, fsync, rename), so a sidecar killed
at any instant leaves only whole entries.  Entries survive restarts and
long outages; an entry is deleted only once it was sent or given up.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path


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

    def put(self, blob: bytes) -> bool:
        """False when full.  Returns only after the entry is durable."""
        with self._lock:
            if len(self._ready) + len(self._taken) >= self.capacity:
                return False
            seq = self._next
            self._next += 1
        tmp = self.dir / f"{seq:020d}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self._path(seq))
        with self._lock:
            self._ready.append(seq)
            self._ready.sort()
        return True

    def take(self):
        """(ticket, bytes) of the oldest entry, or None."""
        with self._lock:
            while self._ready:
                seq = self._ready.pop(0)
                try:
                    blob = self._path(seq).read_bytes()
                except FileNotFoundError:
                    continue
                self._taken.add(seq)
                return seq, blob
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
