"""What the sidecar holds in memory, counted in bytes by holder.

The memory_limiter used to decide on the process's RSS alone.  RSS does not
come back down after a burst (the allocator keeps freed pages), so a
limiter on RSS keeps refusing long after the data is gone.  Instead every
component that keeps telemetry around says how many bytes it holds
(batch buffers, sending queues, request bodies being read and decoded),
the limiter compares that sum with its limit, and receivers reserve the
bytes of a request *before* reading it, so a burst of large requests is
turned away (retryably) instead of allocated.

One account per process: memory is a process-wide resource, and a config
reload runs the old and the new graph side by side.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading

import numpy as np


def record_bytes(records) -> int:
    """Bytes of the records' payloads (what holding the set costs)."""
    return int(np.sum(records.lengths, dtype=np.uint64)) if len(records) else 0


class HeldMemory:
    def __init__(self):
        self._lock = threading.Lock()
        self._by_holder: dict[str, int] = {}
        self.total = 0
        self._limits: dict[int, int] = {}   # id(limiter) -> soft limit in bytes

    # -- holding --------------------------------------------------------------
    def add(self, holder: str, n: int) -> None:
        if n:
            with self._lock:
                self._by_holder[holder] = self._by_holder.get(holder, 0) + n
                self.total += n

    def sub(self, holder: str, n: int) -> None:
        self.add(holder, -n)

    def try_reserve(self, holder: str, n: int, mine: int = 0) -> bool:
        """Add ``n`` bytes unless that would cross the limit.  ``mine``: what
        the caller already reserved; when nothing else is held a reservation
        always succeeds, so one request larger than the limit cannot wedge
        the receiver forever."""
        with self._lock:
            limit = self.limit
            if limit and n > 0 and self.total - mine > 0 and self.total + n > limit:
                return False
            self._by_holder[holder] = self._by_holder.get(holder, 0) + n
            self.total += n
            return True

    @property
    def in_pipelines(self) -> int:
        """Bytes held past the receivers (batch buffers, queues): what a
        memory_limiter refuses on.  Requests being read are left out: they
        were admitted against the limit already, and counting a request's
        own bytes would make the limiter refuse the request it belongs to."""
        with self._lock:
            return self.total - sum(n for h, n in self._by_holder.items() if h.startswith(RECEIVER))

    def by_holder(self) -> dict[str, int]:
        with self._lock:
            return dict(self._by_holder)

    # -- the limit (set by memory_limiter instances while they run) -----------
    @property
    def limit(self) -> int:
        """What receivers admit requests against: the largest limiter's soft
        limit, since a request may feed several pipelines and the most
        tolerant one must still be able to take it (a pipeline with a
        tighter limiter refuses at its own entry)."""
        return max(self._limits.values()) if self._limits else 0

    def set_limit(self, owner, soft_bytes: int) -> None:
        with self._lock:
            self._limits[id(owner)] = soft_bytes

    def clear_limit(self, owner) -> None:
        with self._lock:
            self._limits.pop(id(owner), None)

    def install_metrics(self, telemetry) -> None:
        gauge = telemetry.gauge("memory_held_bytes",
                                "Bytes of telemetry the sidecar holds, by holder (batch buffers, "
                                "sending queues, requests being read); what memory_limiter limits",
                                ("holder",))

        def refresh():
            for holder, n in self.by_holder().items():
                gauge.set(n, holder=holder)

        telemetry.on_collect(refresh)


RECEIVER = "receiver/"    # prefix of the holders that are requests being read

HELD = HeldMemory()


# glibc's malloc serves large blocks from the heap once it has seen them
# freed (its mmap threshold adapts upwards, to 32 MiB), and a heap does not
# shrink past a block still in use: after a burst of large requests RSS
# stays high with nothing held.  A fixed threshold makes every block of
# 1 MiB or more its own mapping, returned to the OS when freed.
_M_MMAP_THRESHOLD = -3
_LARGE_BLOCK = 1 << 20


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def return_large_blocks_to_os() -> bool:
    libc = _libc()
    try:
        return bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, _LARGE_BLOCK))
    except AttributeError:   # not glibc
        return False


def release_free_memory() -> None:
    libc = _libc()
    try:
        if libc:
            libc.malloc_trim(0)
    except AttributeError:
        pass
