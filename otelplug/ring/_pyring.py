"""Pure-Python reference of the ring protocol (cython_ext/ring.pyx).

Same classes, same behaviour, same bytes; about 10x slower.  It is the
readable specification of the format and the second implementation in the
differential tests (both readers must agree on any bytes, corrupt or not).

Threads: the Cython writer is serialised by the GIL (one C call from reserve
to publish); Python code can be switched between bytecodes, so this one
takes a lock per write.

Memory ordering: CPython gives no acquire/release primitives, so this
reference publishes with plain stores in program order.  That is only
correct where stores are not reordered with stores (x86-TSO); the Cython
implementation uses explicit atomics and is the one for production.
"""
from __future__ import annotations

import mmap
import os
import struct
import threading
import time

from .layout import (FIELDS, FLAG_CLOSED, HEADER_SIZE, MAGIC, REC_ALIGN,
                     REC_HEADER, REC_STRUCT, TYPE_PAD, VERSION, RingTruncated,
                     header_check, lost_records, record_span)

_M64 = (1 << 64) - 1
_U64 = struct.Struct("=Q")
_U32 = struct.Struct("=I")


def max_payload_for(capacity: int, requested: int) -> int:
    return min(requested, capacity // 2 - REC_HEADER)


def _map(fd: int, size: int) -> mmap.mmap:
    return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


def _put(mm, name: str, value: int) -> None:
    off, fmt = FIELDS[name]
    (_U64 if fmt == "Q" else _U32).pack_into(mm, off, value & _M64)


def _get(mm, name: str, base: int = 0) -> int:
    off, fmt = FIELDS[name]
    return (_U64 if fmt == "Q" else _U32).unpack_from(mm, off - base)[0]


def _fork_gen() -> int:
    return _fork_generation


_fork_generation = 0


def _bump_fork_generation() -> None:
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_bump_fork_generation)


class RingWriter:
    def __init__(self, fd: int, capacity: int, max_record: int, start_pos: int = 0,
                 pid_check: bool = False):
        if capacity < 64 or capacity & (capacity - 1):
            raise ValueError(f"ring capacity must be a power of two >= 64, got {capacity}")
        if start_pos % REC_ALIGN:
            raise ValueError("start_pos must be a multiple of 8")
        self._mm = _map(fd, HEADER_SIZE + capacity)
        self.capacity = capacity
        self.mask = capacity - 1
        self.max_record = max_payload_for(capacity, max_record)
        self.wpos = start_pos
        self.cached_rpos = start_pos
        self.pid = os.getpid()
        self.pid_check = pid_check
        self.fork_gen = _fork_gen()
        self.closed = False
        self._lock = threading.Lock()
        self.attempted = self.committed = self.committed_bytes = 0
        self.dropped_full = self.dropped_full_bytes = 0
        self.oversize = self.oversize_bytes = 0
        mm = self._mm
        mm[:HEADER_SIZE] = bytes(HEADER_SIZE)
        for name, value in (("version", VERSION), ("header_size", HEADER_SIZE),
                            ("capacity", capacity), ("max_record", self.max_record),
                            ("pid", self.pid), ("created_ns", time.time_ns()),
                            ("start_pos", start_pos), ("write_pos", start_pos),
                            ("read_pos", start_pos)):
            _put(mm, name, value)
        _put(mm, "magic", MAGIC)

    @property
    def usable(self) -> bool:
        if self.closed or self.fork_gen != _fork_gen():
            return False
        return not (self.pid_check and os.getpid() != self.pid)

    def _rec_header(self, idx: int, length: int, rtype: int, seq: int) -> None:
        REC_STRUCT.pack_into(self._mm, HEADER_SIZE + idx, length, rtype, 0,
                             header_check(length, rtype, seq), seq)

    def _reserve(self, n: int):
        span = record_span(n)
        idx = self.wpos & self.mask
        tail = self.capacity - idx
        pad = tail if tail < span else 0
        need = pad + span
        used = (self.wpos - self.cached_rpos) & _M64
        if need > self.capacity - used:
            self.cached_rpos = _get(self._mm, "read_pos")
            used = (self.wpos - self.cached_rpos) & _M64
            if used > self.capacity or need > self.capacity - used:
                return None
        if pad:
            if pad >= REC_HEADER:
                self._rec_header(idx, pad - REC_HEADER, TYPE_PAD, self.committed)
            self.wpos = (self.wpos + pad) & _M64
        return self.wpos

    def _commit(self, at: int, rtype: int, data: bytes) -> None:
        idx = at & self.mask
        n = len(data)
        self._rec_header(idx, n, rtype, self.committed)
        start = HEADER_SIZE + idx + REC_HEADER
        self._mm[start:start + n] = data
        self.wpos = (at + record_span(n)) & _M64
        self.committed += 1
        self.committed_bytes += n

    def _publish(self) -> None:
        _put(self._mm, "write_pos", self.wpos)
        _put(self._mm, "committed", self.committed)
        _put(self._mm, "committed_bytes", self.committed_bytes)

    def _count_attempt(self) -> None:
        self.attempted += 1
        _put(self._mm, "attempted", self.attempted)

    def _count_drop(self, oversize: bool, n: int) -> None:
        if oversize:
            self.oversize += 1
            self.oversize_bytes += n
            _put(self._mm, "oversize", self.oversize)
            _put(self._mm, "oversize_bytes", self.oversize_bytes)
        else:
            self.dropped_full += 1
            self.dropped_full_bytes += n
            _put(self._mm, "dropped_full", self.dropped_full)
            _put(self._mm, "dropped_full_bytes", self.dropped_full_bytes)

    def _check(self, rtype: int) -> None:
        if not 1 <= rtype <= 255:
            raise ValueError("record type must be 1..255 (0 is reserved for padding)")
        if not self.usable:
            raise RuntimeError("ring writer is closed or belongs to the parent process")

    def _write_one(self, rtype: int, data: bytes) -> bool:
        self._count_attempt()
        if len(data) > self.max_record:
            self._count_drop(True, len(data))
            return False
        at = self._reserve(len(data))
        if at is None:
            self._count_drop(False, len(data))
            return False
        self._commit(at, rtype, data)
        return True

    def write(self, rtype: int, *args):
        with self._lock:
            return self._write_locked(rtype, *args)

    def _write_locked(self, rtype: int, data) -> bool:
        self._check(rtype)
        ok = self._write_one(rtype, bytes(data))
        if ok:
            self._publish()
        return ok

    def write_many(self, rtype: int, *args):
        with self._lock:
            return self._write_many_locked(rtype, *args)

    def _write_many_locked(self, rtype: int, records) -> int:
        self._check(rtype)
        ok = sum(self._write_one(rtype, bytes(r)) for r in records)
        self._publish()
        return ok

    def write_wait(self, rtype: int, *args):
        with self._lock:
            return self._write_wait_locked(rtype, *args)

    def _write_wait_locked(self, rtype: int, data, timeout: float) -> bool:
        self._check(rtype)
        data = bytes(data)
        deadline = time.monotonic() + max(0.0, timeout)
        self._count_attempt()
        if len(data) > self.max_record:
            self._count_drop(True, len(data))
            return False
        t0 = time.monotonic_ns()
        sleep = 1e-6
        waited = False
        while True:
            at = self._reserve(len(data))
            if at is not None:
                self._commit(at, rtype, data)
                self._publish()
                break
            if time.monotonic() >= deadline or not self.usable:
                self._count_drop(False, len(data))
                break
            waited = True
            time.sleep(sleep)
            sleep = min(sleep * 2, 1e-3)
        if waited:
            _put(self._mm, "waits", _get(self._mm, "waits") + 1)
            _put(self._mm, "wait_ns", _get(self._mm, "wait_ns") + time.monotonic_ns() - t0)
        return at is not None

    def write_many_wait(self, rtype: int, records, timeout: float) -> int:
        ok = 0
        for r in records:
            ok += self.write_wait(rtype, r, timeout)
        return ok

    def _test_torn_write(self, rtype: int, data, keep: int) -> bool:
        data = bytes(data)
        self._count_attempt()
        if len(data) > self.max_record:
            return False
        at = self._reserve(len(data))
        if at is None:
            return False
        idx = at & self.mask
        self._rec_header(idx, len(data), rtype, self.committed)
        start = HEADER_SIZE + idx + REC_HEADER
        part = data[:max(0, keep)]
        self._mm[start:start + len(part)] = part
        return True

    def attach_wake(self, wake) -> None:
        pass   # see WakeWord: the reference relies on the consumer's timeout

    def publish_meta(self, nbytes: int) -> None:
        if self.usable:
            _put(self._mm, "meta_bytes", nbytes)

    def stats(self) -> dict:
        return {"pid": self.pid, "capacity": self.capacity, "max_record": self.max_record,
                "attempted": self.attempted, "committed": self.committed,
                "committed_bytes": self.committed_bytes, "dropped_full": self.dropped_full,
                "dropped_full_bytes": self.dropped_full_bytes, "oversize": self.oversize,
                "oversize_bytes": self.oversize_bytes, "write_pos": self.wpos}

    def close(self, mark_closed: bool = True) -> None:
        if self.closed:
            return
        if mark_closed and self.usable:
            _put(self._mm, "flags", _get(self._mm, "flags") | FLAG_CLOSED)
        self.closed = True
        self._mm.close()


class WakeWord:
    """Reference stand-in for the futex wake-up: Python has no futex, so the
    consumer simply sleeps its timeout (correct, only slower to react)."""

    def __init__(self, fd: int):
        pass

    def arm(self) -> int:
        return 0

    def wait(self, seq: int, timeout: float) -> None:
        time.sleep(timeout)

    def disarm(self) -> None:
        pass

    def close(self) -> None:
        pass


HAVE_FUTEX = False


class RecordBatch:
    """Same shape as the Cython RecordBatch: numpy columns over the ring's
    bytes, so everything downstream (masks, column decoders) works on both."""

    def __init__(self, data, offsets, lengths, types, seqs, nbytes, start_pos,
                 end_pos, next_seq):
        import numpy as np
        self.data = data
        self.offsets = np.array(offsets, dtype=np.uint64)
        self.lengths = np.array(lengths, dtype=np.uint32)
        self.types = np.array(types, dtype=np.uint8)
        self.seqs = np.array(seqs, dtype=np.uint64)
        self.count = len(offsets)
        self.nbytes = nbytes
        self.start_pos = start_pos
        self.end_pos = end_pos
        self.next_seq = next_seq

    def __len__(self):
        return self.count

    def payload(self, i: int):
        if not 0 <= i < self.count:
            raise IndexError(i)
        off = int(self.offsets[i])
        return self.data[off:off + int(self.lengths[i])]

    def __iter__(self):
        for i in range(self.count):
            yield int(self.types[i]), self.payload(i)


class RingReader:
    """The consumer half.  Unlike the Cython reader it never maps the segment:
    it reads with pread into a private mirror of the ring (same offsets, so
    batches look the same) and writes its header fields with pwrite.  A file
    truncated under it then gives a short read, reported as RingTruncated,
    instead of a SIGBUS (the Cython reader gets the same result from a
    SIGBUS guard, see cython_ext/sigbus_guard.h)."""

    def __init__(self, fd: int, file_size: int, path=None):
        self.path = path
        self._fd = fd
        self._size = file_size
        if file_size < HEADER_SIZE + 64:
            raise ValueError(f"{path}: segment of {file_size} bytes is too small for a ring")
        head = self._pread(HEADER_SIZE, 0)
        if _get(head, "magic") != MAGIC:
            raise ValueError(f"{path}: not an otelplug ring (bad magic)")
        if _get(head, "version") != VERSION or _get(head, "header_size") != HEADER_SIZE:
            raise ValueError(f"{path}: ring layout version {_get(head, 'version')} is not supported")
        cap = _get(head, "capacity")
        if cap < 64 or cap & (cap - 1) or HEADER_SIZE + cap != file_size:
            raise ValueError(f"{path}: ring capacity {cap} does not match its file size {file_size}")
        self.capacity = cap
        self.mask = cap - 1
        self.max_record = max_payload_for(cap, _get(head, "max_record"))
        # anonymous memory, backed lazily: only the pages a scan fills cost
        # memory (a bytearray would zero, and so commit, all of it at once)
        self._mm = mmap.mmap(-1, HEADER_SIZE + cap)
        self._ro = memoryview(self._mm).toreadonly()
        self.rpos = _get(head, "read_pos")
        self.next_seq = _get(head, "next_seq")
        self.delivered = _get(head, "delivered")
        self.delivered_bytes = _get(head, "delivered_bytes")
        self.corrupt = _get(head, "corrupt")
        self.corrupt_bytes = _get(head, "corrupt_bytes")
        self.corrupt_records = _get(head, "corrupt_records")
        self.last_bad_wpos = 0
        w = _get(head, "write_pos")
        dist = (w - self.rpos) & _M64
        if self.rpos & 7 or dist > cap:
            # an impossible saved position: skip to the producer's position
            self._count_corrupt(dist if dist <= cap else 0)
            self.rpos = w
        self.committed_pos = self.rpos
        self.scanned_to = self.rpos
        self._filled_to = self.rpos      # the mirror holds ring bytes up to here
        self._put("consumer_pid", os.getpid())

    # -- file access: pread/pwrite, with a short read meaning "truncated" ------
    def _pread(self, n: int, off: int) -> bytes:
        b = os.pread(self._fd, n, off)
        if len(b) != n:
            raise RingTruncated(f"{self.path}: ring file shrank below {self._size} bytes")
        return b

    def _check(self) -> None:
        if self._mm is None:
            raise ValueError("reader is closed")
        if self.truncated():
            raise RingTruncated(f"{self.path}: ring file shrank below {self._size} bytes")

    def truncated(self) -> bool:
        return os.fstat(self._fd).st_size < self._size

    def _hget(self, name: str) -> int:
        off, fmt = FIELDS[name]
        return _get(self._pread(8, off - off % 8), name, off - off % 8)

    def _put(self, name: str, value: int) -> None:
        off, fmt = FIELDS[name]
        os.pwrite(self._fd, (_U64 if fmt == "Q" else _U32).pack(value & _M64), off)

    def _fill(self, pos: int, end: int) -> None:
        """Copy ring bytes [pos, end) (free-running positions) into the mirror."""
        while pos != end:
            idx = pos & self.mask
            n = min((end - pos) & _M64, self.capacity - idx)
            got = os.preadv(self._fd, [memoryview(self._mm)[HEADER_SIZE + idx:HEADER_SIZE + idx + n]],
                            HEADER_SIZE + idx)
            if got != n:
                raise RingTruncated(f"{self.path}: ring file shrank below {self._size} bytes")
            pos = (pos + n) & _M64

    def _count_corrupt(self, skipped: int) -> None:
        self.corrupt += 1
        self.corrupt_bytes += skipped
        self._put("corrupt", self.corrupt)
        self._put("corrupt_bytes", self.corrupt_bytes)

    def _fresh(self, pos: int) -> bool:
        """True unless ``pos`` was already scanned (a rescan after rewind()
        must not count the same loss twice)."""
        return (pos - self.committed_pos) & _M64 >= (self.scanned_to - self.committed_pos) & _M64

    def _count_lost(self, at: int, n: int) -> None:
        if n and self._fresh(at):
            self.corrupt_records += n
            self._put("corrupt_records", self.corrupt_records)

    def _header_ok(self, pos: int, avail: int, strict_seq: bool) -> bool:
        idx = pos & self.mask
        length, rtype, flags, check, seq = REC_STRUCT.unpack_from(self._mm, HEADER_SIZE + idx)
        if flags != 0 or check != header_check(length, rtype, seq):
            return False
        if strict_seq and seq != self.next_seq:
            return False
        if rtype == TYPE_PAD:
            return length + REC_HEADER == self.capacity - idx and avail >= self.capacity - idx
        if length > self.max_record:
            return False
        span = record_span(length)
        return span <= avail and idx + span <= self.capacity

    def meta_bytes(self) -> int:
        self._check()
        return self._hget("meta_bytes")

    def pending_bytes(self) -> int:
        self._check()
        return (self._hget("write_pos") - self.rpos) & _M64

    def scan(self, max_records: int = 4096, max_bytes: int = 1 << 24) -> RecordBatch:
        self._check()
        cap = self.capacity
        pos = start = self.rpos
        w = self._hget("write_pos")
        if (w - pos) & _M64 > cap or (w & 7) != (pos & 7):
            if w != self.last_bad_wpos:
                self.last_bad_wpos = w
                self._count_corrupt(0)
            w = pos
        # only bytes not in the mirror yet: a backlog is not re-read at every
        # scan (bytes before _filled_to cannot change until committed)
        ahead = (self._filled_to - pos) & _M64
        self._fill(self._filled_to if ahead <= (w - pos) & _M64 else pos, w)
        self._filled_to = w
        offsets, lengths, types, seqs = [], [], [], []
        nbytes = 0
        while pos != w and len(offsets) < max_records and nbytes < max_bytes:
            idx = pos & self.mask
            avail = (w - pos) & _M64
            if cap - idx < REC_HEADER:
                pos = (pos + cap - idx) & _M64
                continue
            if avail < REC_HEADER or not self._header_ok(pos, avail, True):
                if avail >= REC_HEADER and self._header_ok(pos, avail, False):
                    # a valid record whose sequence number is ahead: the
                    # records in between were lost (in bytes skipped earlier)
                    found = _U64.unpack_from(self._mm, HEADER_SIZE + idx + 8)[0]
                    self._count_lost(pos, lost_records(found, self.next_seq, cap))
                    self.next_seq = found
                    continue
                skip_from = pos
                pos = (pos + REC_ALIGN) & _M64
                while pos != w:
                    idx = pos & self.mask
                    if cap - idx < REC_HEADER:
                        pos = (pos + cap - idx) & _M64
                        continue
                    if (w - pos) & _M64 >= REC_HEADER and self._header_ok(pos, (w - pos) & _M64, False):
                        break
                    pos = (pos + REC_ALIGN) & _M64
                if self._fresh(skip_from):
                    self._count_corrupt((pos - skip_from) & _M64)
                if pos == w:
                    break
                found = _U64.unpack_from(self._mm, HEADER_SIZE + (pos & self.mask) + 8)[0]
                self._count_lost(skip_from, lost_records(found, self.next_seq, cap))
                self.next_seq = found
                continue
            length, rtype, _, _, _ = REC_STRUCT.unpack_from(self._mm, HEADER_SIZE + idx)
            if rtype == TYPE_PAD:
                pos = (pos + cap - idx) & _M64
                continue
            offsets.append(HEADER_SIZE + idx + REC_HEADER)
            lengths.append(length)
            types.append(rtype)
            seqs.append(self.next_seq)
            nbytes += length
            self.next_seq = (self.next_seq + 1) & _M64
            pos = (pos + record_span(length)) & _M64
        self.rpos = pos
        if self._fresh(pos):
            self.scanned_to = pos
        return RecordBatch(self._ro, offsets, lengths, types, seqs, nbytes, start, pos,
                           self.next_seq)

    def commit(self, batch: RecordBatch) -> None:
        self._check()
        if (batch.end_pos - self.committed_pos) & _M64 > self.capacity:
            raise ValueError("batch does not belong to this reader's unread range")
        self.delivered += batch.count
        self.delivered_bytes += batch.nbytes
        self.committed_pos = batch.end_pos
        self._put("delivered", self.delivered)
        self._put("delivered_bytes", self.delivered_bytes)
        self._put("next_seq", batch.next_seq)
        self._put("read_pos", batch.end_pos)

    def rewind(self) -> None:
        self._check()
        self.rpos = self.committed_pos
        self.next_seq = self._hget("next_seq")

    def header(self) -> dict:
        self._check()
        head = self._pread(256, 0)
        names = ("pid", "flags", "capacity", "max_record", "created_ns", "write_pos",
                 "read_pos", "attempted", "committed", "committed_bytes", "dropped_full",
                 "dropped_full_bytes", "oversize", "oversize_bytes", "delivered",
                 "delivered_bytes", "corrupt", "corrupt_bytes", "corrupt_records", "waits",
                 "wait_ns")
        return {n: _get(head, n) for n in names}

    def close(self) -> None:
        if self._mm is None:
            return
        self._ro = None
        try:
            self._mm.close()
        except BufferError:
            pass  # batches still hold views: the mirror goes when they do
        self._mm = None


def debug_counters():
    return {"maps_opened": 0, "maps_released": 0}


HEADER_SIZE = HEADER_SIZE
DEBUG_BUILD = False
