"""The producer side: one ring per process per channel, created lazily.

``Producer.write`` is what adapters call on their hot path.  It never blocks
and never raises for ring conditions: a full ring or an oversize record is
dropped and counted in the ring's shared header, and if no ring can be
created at all (shared-memory folder full, permissions) the record is counted
here as ``unavailable`` and a warning is logged once.

Fork safety: a child must never write into its parent's ring.  An
``os.register_at_fork`` hook makes every Producer in the child drop the
inherited ring (closing its mapping and file descriptors, which also releases
the parent's liveness lock in the child).  Writers additionally compare a
fork generation bumped by ``pthread_atfork`` in C, which catches forks that
bypass Python, and can check the pid on every write (``pid_check=True``,
~140 ns more per write on this VM).  The child gets a ring of its own on its
first write.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref

from . import impl as _impl
from .layout import HEADER_SIZE
from .meta import encode_entry, meta_path
from .segment import WakeFile, create_segment, resolve_channel

log = logging.getLogger("otelplug.ring")

DEFAULT_CAPACITY = 16 * 1024 * 1024   # tmpfs pages are only used once touched
DEFAULT_MAX_RECORD = 1024 * 1024
CAPACITY_ENV = "OTELPLUG_RING_CAPACITY"

_live_producers: "weakref.WeakSet[Producer]" = weakref.WeakSet()


class Producer:
    """Writes records into this process's ring on ``channel``.

    Args:
        channel: channel name; default ``$OTELPLUG_CHANNEL`` or ``default``.
        capacity: ring data bytes, a power of two (default 16 MiB, or
            ``$OTELPLUG_RING_CAPACITY``).
        max_record: largest payload accepted (default 1 MiB; at most half the
            capacity); larger records are dropped and counted as oversize.
        group: make the segment group-readable/writable (0660) by this group
            instead of owner-only (0600).
        pid_check: also compare the pid on every write (see module doc).
        impl: ring implementation module (default: Cython, see ``impl``).
    """

    def __init__(self, channel: str | None = None, capacity: int | None = None,
                 max_record: int = DEFAULT_MAX_RECORD, group: str | int | None = None,
                 pid_check: bool = False, impl=None, start_pos: int = 0,
                 shm_directory=None):
        self.channel = resolve_channel(channel)
        self.capacity = int(capacity or os.environ.get(CAPACITY_ENV) or DEFAULT_CAPACITY)
        if self.capacity < 64 or self.capacity & (self.capacity - 1):
            raise ValueError(f"ring capacity must be a power of two >= 64, got {self.capacity}")
        self.max_record = max_record
        self.group = group
        self.pid_check = pid_check
        self.start_pos = start_pos  # tests start near 2^32 / 2^64
        self.shm_directory = shm_directory
        self._impl = impl or _impl.default()
        self._writer = None
        self._fd = -1
        self._meta_fd = -1
        self._wake_file = None            # WakeFile, held (locked) while we live
        self._meta_len = 0
        self._defined: set[int] = set()   # definition keys in the current ring
        self.generation = 0               # bumped for every new ring (e.g. after fork)
        self.path = None
        self.unavailable = 0        # records dropped because no ring could be made
        self._warned = False
        self._closed = False
        self._lock = threading.Lock()  # only around ring creation, never per write
        _live_producers.add(self)

    # -- hot path -----------------------------------------------------------
    def write(self, rtype: int, data) -> bool:
        """Write one record; True if committed, False if dropped (counted)."""
        try:
            return self._writer.write(rtype, data)
        except (AttributeError, RuntimeError):  # no ring yet, forked, or closed
            w = self._ensure_writer()
            return w.write(rtype, data) if w is not None else self._unavailable(1)

    def write_many(self, rtype: int, records) -> int:
        """Write a sequence of records with one publish; returns how many
        were committed."""
        w = self._ensure_writer()
        if w is None:
            records = list(records)
            self._unavailable(len(records))
            return 0
        return w.write_many(rtype, records)

    def write_many_wait(self, rtype: int, records, timeout: float) -> int:
        """Lossless batched write: when the ring fills, publishes what it has
        written and waits up to ``timeout`` seconds per record for room.
        Returns how many records were committed."""
        w = self._ensure_writer()
        if w is None:
            records = list(records)
            self._unavailable(len(records))
            return 0
        return w.write_many_wait(rtype, records, timeout)

    def write_wait(self, rtype: int, data, timeout: float) -> bool:
        """Bounded-wait write: waits up to ``timeout`` seconds for room."""
        try:
            return self._writer.write_wait(rtype, data, timeout)
        except (AttributeError, RuntimeError):  # no ring yet, forked, or closed
            w = self._ensure_writer()
            return w.write_wait(rtype, data, timeout) if w is not None else self._unavailable(1)

    def define(self, key: int, payload: bytes) -> bool:
        """Store a definition (resource, scope, ...) under a 64-bit ``key``
        once per ring; records then refer to it by key.  Returns False only
        when no ring can be had."""
        if key in self._defined and self._writer is not None and self._writer.usable:
            return True
        w = self._ensure_writer()
        if w is None:
            return False
        with self._lock:
            if key in self._defined:
                return True
            entry = encode_entry(key, payload)
            try:
                os.pwrite(self._meta_fd, entry, self._meta_len)
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    log.warning("otelplug: cannot write ring definitions: %s", exc)
                return False
            self._meta_len += len(entry)
            w.publish_meta(self._meta_len)
            self._defined.add(key)
            return True

    # -- ring lifecycle -----------------------------------------------------
    def _ensure_writer(self):
        w = self._writer
        if w is not None and w.usable:
            return w
        with self._lock:
            if self._closed:
                return None
            w = self._writer
            if w is not None and w.usable:
                return w
            if w is not None:           # inherited across a fork
                self._drop_inherited()
            try:
                self._writer = self._create_ring()
            except Exception as exc:  # never into the app
                if not self._warned:
                    self._warned = True
                    log.warning("otelplug: cannot create a ring on channel %r: %s; "
                                "records are dropped and counted", self.channel, exc)
                return None
            return self._writer

    def _create_ring(self):
        seg = create_segment(self.channel, HEADER_SIZE + self.capacity, self.group,
                             self.shm_directory)
        meta_fd = -1
        try:
            writer = self._impl.RingWriter(seg.fd, self.capacity, self.max_record,
                                           self.start_pos, self.pid_check)
            # the definitions file exists before the ring is visible
            # a new name (random nonce): O_EXCL and O_NOFOLLOW so that nothing
            # planted there beforehand is written through
            meta_fd = os.open(meta_path(seg.path), os.O_WRONLY | os.O_CREAT | os.O_EXCL
                              | os.O_NOFOLLOW | os.O_CLOEXEC,
                              0o600 if self.group is None else 0o660)
            os.fchmod(meta_fd, os.fstat(seg.fd).st_mode & 0o777)
            if self.group is not None:
                os.fchown(meta_fd, -1, os.fstat(seg.fd).st_gid)
            seg.publish()
        except BaseException:
            if meta_fd >= 0:
                os.close(meta_fd)
                os.unlink(meta_path(seg.path))
            seg.abandon()
            raise
        self._attach_wake(writer)
        self._fd = seg.fd
        self._meta_fd = meta_fd
        self._meta_len = 0
        self._defined = set()
        self.generation += 1
        self.path = seg.path
        return writer

    def _attach_wake(self, writer) -> None:
        """Let the writer wake an idle consumer (best effort: without it the
        consumer still finds the data at its next timed poll)."""
        if self._wake_file is None:
            try:
                self._wake_file = WakeFile(self.channel, self.group, self.shm_directory)
            except OSError as exc:   # e.g. a symlink or another user's file there
                log.warning("otelplug: no wake-up file on channel %r (%s); the consumer "
                            "finds records on its timer", self.channel, exc)
                return
        writer.attach_wake(self._impl.WakeWord(self._wake_file.fd))

    def _drop_inherited(self) -> None:
        """In a forked child: let go of the parent's ring without touching it."""
        w, self._writer = self._writer, None
        if w is not None:
            w.close(False)
        self._close_fds()
        if self._wake_file is not None:
            # the parent's lock and file: let go without touching them
            self._wake_file.release(unlink=False)
            self._wake_file = None
        self.path = None

    def _close_fds(self) -> None:
        for name in ("_fd", "_meta_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
        self._defined = set()

    def _unavailable(self, n: int) -> bool:
        self.unavailable += n
        return False

    def stats(self) -> dict:
        """This process's counters for this channel."""
        s = self._writer.stats() if self._writer is not None else {}
        s["unavailable"] = self.unavailable
        s["path"] = str(self.path) if self.path else None
        return s

    def close(self) -> None:
        """Mark the ring closed (the consumer drains and reclaims it) and let
        it go.  Later writes are counted as unavailable."""
        with self._lock:
            self._closed = True
            w, self._writer = self._writer, None
            if w is not None:
                w.close(w.usable)
            self._close_fds()
            if self._wake_file is not None:
                self._wake_file.release()   # the last one out removes it
                self._wake_file = None


    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _after_fork_in_child() -> None:
    for p in list(_live_producers):
        p._lock = threading.Lock()  # the parent's may have been held mid-fork
        p._drop_inherited()


def _close_all_at_exit() -> None:
    for p in list(_live_producers):
        try:
            p.close()
        except Exception:
            pass


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)
