# cython: language_level=3, cdivision=True
"""Single-writer shared-memory rings: the producer and consumer halves.

One ring per producer process, so the hot path has no read-modify-write on
shared memory and no lock: the producer fills bytes and publishes them with
one release store of ``write_pos``; the consumer acquires ``write_pos``,
reads, and hands space back with a release store of ``read_pos``.  A producer
killed mid-record never published the record, so the consumer cannot see it.

Threads: every write runs inside one call that holds the GIL from reserve to
publish and never releases it, so threads of one process are serialised by
the GIL.  (A free-threaded build would need a per-writer lock here.)

The format is in ring_layout.h; otelplug/ring/_pyring.py is the pure-Python
reference of the same protocol, used as a spec and in differential tests.
"""
from cpython.bytes cimport PyBytes_CheckExact, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy, memset
from posix.unistd cimport getpid
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC, nanosleep

cimport cython
from ring_layout cimport *
from atomics cimport (
    otp_load_acquire_u64, otp_store_release_u64, otp_load_relaxed_u64,
    otp_store_relaxed_u64, otp_store_relaxed_u32, otp_load_relaxed_u32,
    otp_install_atfork, otp_fork_gen, otp_futex_wake, otp_futex_wait, OTP_HAVE_FUTEX,
)

import numpy as np
cimport numpy as cnp
cnp.import_array()

from posix.stat cimport struct_stat, fstat

cdef extern from "sigbus_guard.h":
    int otp_guard_install() noexcept
    int otp_guard_register(const void *addr, size_t length) noexcept
    int otp_guard_hit(int slot) noexcept nogil
    void otp_guard_release(int slot) noexcept

from otelplug.ring.layout import RingTruncated

cdef extern from *:
    """
    #ifndef OTP_DEBUG
    #define OTP_DEBUG 0
    #endif
    """
    const bint OTP_DEBUG

otp_install_atfork()

HEADER_SIZE = OTP_HEADER_SIZE
REC_HEADER = OTP_REC_HEADER
DEBUG_BUILD = bool(OTP_DEBUG)

# Debug-build counters (always zero in a release build): mappings opened and
# released by writers and readers.  Tests check that they balance.
cdef uint64_t _dbg_maps_opened = 0
cdef uint64_t _dbg_maps_released = 0


def debug_counters():
    """Counters kept only by a debug build (OTELPLUG_DEBUG=1 at build time)."""
    return {"maps_opened": _dbg_maps_opened, "maps_released": _dbg_maps_released}


cdef inline uint64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


cdef inline void _put_rec_header(unsigned char *p, uint32_t length, uint8_t rtype,
                                 uint64_t seq) noexcept nogil:
    # native byte order: the ring never leaves the host
    (<uint32_t *>p)[0] = length
    p[4] = rtype
    p[5] = 0
    (<uint16_t *>(p + 6))[0] = otp_header_check(length, rtype, seq)
    (<uint64_t *>(p + 8))[0] = seq


cdef inline bint _is_pow2(uint64_t x) noexcept:
    return x != 0 and (x & (x - 1)) == 0


def max_payload_for(uint64_t capacity, uint64_t requested):
    """The largest payload a ring of ``capacity`` accepts.

    A record plus the padding that may precede it must fit in an empty ring
    wherever the write position stands, hence at most half the capacity.
    """
    cdef uint64_t limit = capacity // 2 - OTP_REC_HEADER
    return requested if requested < limit else limit


cdef object _map(int fd, uint64_t size):
    import mmap
    global _dbg_maps_opened
    if OTP_DEBUG:
        _dbg_maps_opened += 1
    return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


cdef _release_map(object mm):
    global _dbg_maps_released
    if mm is None:
        return
    try:
        mm.close()
    except BufferError:
        # batches still hold views into it: the mapping goes when they do
        pass
    if OTP_DEBUG:
        _dbg_maps_released += 1


# guarded reader mappings that batches still viewed when their reader closed:
# (mmap, guard slot); closed, and their slot released, once the views are gone
_lingering = []


cdef _release_guarded(object mm, int slot):
    """Unmap a reader's mapping and release its SIGBUS guard slot; if
    batches still hold views into it, keep it guarded until they are gone."""
    global _dbg_maps_released
    if mm is None:
        return
    if OTP_DEBUG:
        _dbg_maps_released += 1
    _lingering.append((mm, slot))
    _sweep_lingering()


def _sweep_lingering():
    global _lingering
    keep = []
    for mm, slot in _lingering:
        try:
            mm.close()
        except BufferError:
            keep.append((mm, slot))
            continue
        otp_guard_release(slot)
    _lingering = keep


cdef inline uint64_t _lost_records(uint64_t found, uint64_t expected, uint64_t capacity) noexcept:
    # as layout.lost_records: a gap larger than the ring can hold is a
    # garbage header that passed the check, not a count
    cdef uint64_t gap = found - expected
    return gap if gap <= capacity // OTP_REC_HEADER else 1


cdef uint64_t _file_size(int fd) except? 0:
    cdef struct_stat st
    if fstat(fd, &st) != 0:
        raise OSError("fstat on a ring file failed")
    return <uint64_t>st.st_size


@cython.final
cdef class RingWriter:
    """The producer half of one ring (one per producer process).

    The caller creates and sizes the segment file, builds the writer over it
    (which initialises the header) and then publishes the segment.
    """
    cdef object _mm
    cdef unsigned char[::1] _view
    cdef otp_ring_header *hdr
    cdef unsigned char *data
    cdef uint64_t mask
    cdef readonly uint64_t capacity
    cdef readonly uint64_t max_record
    # producer-private copies of shared counters: the single writer never
    # reads its own shared fields back (no read-modify-write on shared lines)
    cdef uint64_t wpos
    cdef uint64_t cached_rpos
    cdef uint64_t attempted
    cdef uint64_t committed
    cdef uint64_t committed_bytes
    cdef uint64_t dropped_full
    cdef uint64_t dropped_full_bytes
    cdef uint64_t oversize
    cdef uint64_t oversize_bytes
    cdef uint64_t fork_gen
    cdef readonly int pid
    cdef readonly bint closed
    cdef object _wake            # the channel's WakeWord, kept alive while used
    cdef uint32_t *wake_word
    cdef uint32_t *wake_sleeping
    cdef bint pid_check
    cdef bint _usable(self)

    def __cinit__(self, int fd, uint64_t capacity, uint64_t max_record,
                  uint64_t start_pos=0, bint pid_check=False):
        if not _is_pow2(capacity) or capacity < 64:
            raise ValueError(f"ring capacity must be a power of two >= 64, got {capacity}")
        if start_pos & (OTP_REC_ALIGN - 1):
            raise ValueError("start_pos must be a multiple of 8")
        self._mm = _map(fd, OTP_HEADER_SIZE + capacity)
        self._view = self._mm
        self.hdr = <otp_ring_header *>&self._view[0]
        self.data = &self._view[OTP_HEADER_SIZE]
        self.capacity = capacity
        self.mask = capacity - 1
        self.max_record = max_payload_for(capacity, max_record)
        self.wpos = start_pos
        self.cached_rpos = start_pos
        self.pid = getpid()
        self.fork_gen = otp_fork_gen()
        self.pid_check = pid_check
        memset(<void *>self.hdr, 0, OTP_HEADER_SIZE)
        self.hdr.version = OTP_RING_VERSION
        self.hdr.header_size = OTP_HEADER_SIZE
        self.hdr.capacity = capacity
        self.hdr.max_record = self.max_record
        self.hdr.pid = <uint32_t>self.pid
        import time
        self.hdr.created_ns = <uint64_t>time.time_ns()
        self.hdr.start_pos = start_pos
        self.hdr.write_pos = start_pos
        self.hdr.read_pos = start_pos
        # magic last, released: a reader that sees it sees a whole header
        otp_store_release_u64(&self.hdr.magic, OTP_RING_MAGIC)

    cdef bint _usable(self):
        if self.closed or self.fork_gen != otp_fork_gen():
            return False
        if self.pid_check and getpid() != self.pid:
            return False
        return True

    @property
    def usable(self):
        """False once closed, or in a child process after fork."""
        return self._usable()

    cdef int _reserve(self, uint64_t n, uint64_t *at) noexcept:
        """Find room for a record of n payload bytes; 0 on success, 1 if full.

        Writes the PAD record over the tail of the data area when the record
        does not fit before the end, but publishes nothing.
        """
        cdef uint64_t span = otp_record_span(n)
        cdef uint64_t idx = self.wpos & self.mask
        cdef uint64_t tail = self.capacity - idx
        cdef uint64_t pad = tail if tail < span else 0
        cdef uint64_t need = pad + span
        cdef uint64_t used = self.wpos - self.cached_rpos
        if need > self.capacity - used:
            # only now look at the consumer's position: acquire, so its reads
            # of the space we are about to reuse are finished
            self.cached_rpos = otp_load_acquire_u64(&self.hdr.read_pos)
            used = self.wpos - self.cached_rpos
            if used > self.capacity or need > self.capacity - used:
                return 1
        if pad:
            if pad >= OTP_REC_HEADER:
                _put_rec_header(self.data + idx, <uint32_t>(pad - OTP_REC_HEADER),
                                OTP_TYPE_PAD, self.committed)
            self.wpos += pad
        at[0] = self.wpos
        return 0

    cdef void _commit(self, uint64_t at, uint8_t rtype, const unsigned char *buf,
                      uint64_t n) noexcept:
        """Copy the record in place at ``at`` (not yet published)."""
        cdef unsigned char *p = self.data + (at & self.mask)
        _put_rec_header(p, <uint32_t>n, rtype, self.committed)
        if n:
            memcpy(p + OTP_REC_HEADER, buf, n)
        self.wpos = at + otp_record_span(n)
        self.committed += 1
        self.committed_bytes += n

    cdef void _publish(self) noexcept:
        otp_store_release_u64(&self.hdr.write_pos, self.wpos)
        otp_store_relaxed_u64(&self.hdr.committed, self.committed)
        otp_store_relaxed_u64(&self.hdr.committed_bytes, self.committed_bytes)
        # an idle consumer asked to be woken: one relaxed load when it did not
        if self.wake_sleeping != NULL and otp_load_relaxed_u32(self.wake_sleeping):
            otp_store_relaxed_u32(self.wake_sleeping, 0)
            otp_futex_wake(self.wake_word)

    def attach_wake(self, WakeWord wake):
        """Wake the channel's consumer through ``wake`` when it sleeps."""
        self._wake = wake
        self.wake_word = wake.word
        self.wake_sleeping = wake.sleeping

    cdef void _count_attempt(self) noexcept:
        self.attempted += 1
        otp_store_relaxed_u64(&self.hdr.attempted, self.attempted)

    cdef void _count_drop(self, int why, uint64_t n) noexcept:
        if why == 2:
            self.oversize += 1
            self.oversize_bytes += n
            otp_store_relaxed_u64(&self.hdr.oversize, self.oversize)
            otp_store_relaxed_u64(&self.hdr.oversize_bytes, self.oversize_bytes)
        else:
            self.dropped_full += 1
            self.dropped_full_bytes += n
            otp_store_relaxed_u64(&self.hdr.dropped_full, self.dropped_full)
            otp_store_relaxed_u64(&self.hdr.dropped_full_bytes, self.dropped_full_bytes)

    cdef int _write(self, uint8_t rtype, const unsigned char *buf, uint64_t n) noexcept:
        """0 written, 1 dropped (full), 2 dropped (oversize)."""
        cdef uint64_t at
        self._count_attempt()
        if n > self.max_record:
            self._count_drop(2, n)
            return 2
        if self._reserve(n, &at):
            self._count_drop(1, n)
            return 1
        self._commit(at, rtype, buf, n)
        self._publish()
        return 0

    cdef int _check_write(self, int rtype) except -1:
        if rtype < 1 or rtype > 255:
            raise ValueError("record type must be 1..255 (0 is reserved for padding)")
        if not self._usable():
            raise RuntimeError("ring writer is closed or belongs to the parent process")
        return 0

    def write(self, int rtype, data):
        """Append one record; True if committed, False if dropped (counted).

        Never blocks, never raises for a full ring or an oversize record.
        """
        cdef Py_buffer view
        cdef int r
        self._check_write(rtype)
        if PyBytes_CheckExact(data):
            r = self._write(<uint8_t>rtype, <const unsigned char *>PyBytes_AS_STRING(data),
                            <uint64_t>PyBytes_GET_SIZE(data))
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                r = self._write(<uint8_t>rtype, <const unsigned char *>view.buf, <uint64_t>view.len)
            finally:
                PyBuffer_Release(&view)
        return r == 0

    def write_many(self, int rtype, records):
        """Append a sequence of records, publishing once at the end.

        Returns how many were committed; the rest were dropped and counted.
        """
        cdef Py_buffer view
        cdef uint64_t at, n
        cdef Py_ssize_t ok = 0
        cdef const unsigned char *buf
        self._check_write(rtype)
        for rec in records:
            PyObject_GetBuffer(rec, &view, PyBUF_SIMPLE)
            try:
                buf = <const unsigned char *>view.buf
                n = <uint64_t>view.len
                self._count_attempt()
                if n > self.max_record:
                    self._count_drop(2, n)
                elif self._reserve(n, &at):
                    self._count_drop(1, n)
                else:
                    self._commit(at, <uint8_t>rtype, buf, n)
                    ok += 1
            finally:
                PyBuffer_Release(&view)
        self._publish()
        return ok

    def write_wait(self, int rtype, data, double timeout):
        """Like write(), but waits up to ``timeout`` seconds for room.

        For callers who prefer to wait rather than drop.  The GIL is released
        while sleeping, so other threads keep writing meanwhile.
        """
        cdef Py_buffer view
        self._check_write(rtype)
        if PyBytes_CheckExact(data):
            return self._write_wait(<uint8_t>rtype, <const unsigned char *>PyBytes_AS_STRING(data),
                                    <uint64_t>PyBytes_GET_SIZE(data), timeout)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self._write_wait(<uint8_t>rtype, <const unsigned char *>view.buf,
                                    <uint64_t>view.len, timeout)
        finally:
            PyBuffer_Release(&view)

    cdef bint _wait_for_room(self, uint64_t n, uint64_t *at, double timeout):
        """Sleep-poll, GIL released, until a record of ``n`` bytes fits
        (True, ``at`` set) or ``timeout`` passes (False).  Counts the wait."""
        cdef uint64_t t0 = _now_ns()
        cdef uint64_t deadline = t0 + <uint64_t>(timeout * 1e9) if timeout > 0 else t0
        cdef uint64_t sleep_ns = 1000
        cdef timespec ts
        cdef bint found = False
        while _now_ns() < deadline:
            ts.tv_sec = 0
            ts.tv_nsec = sleep_ns
            with nogil:
                nanosleep(&ts, NULL)
            if sleep_ns < 1000000:
                sleep_ns *= 2
            if not self._usable():
                break
            if not self._reserve(n, at):
                found = True
                break
        self._count_wait(_now_ns() - t0)
        return found

    cdef bint _write_wait(self, uint8_t rtype, const unsigned char *buf, uint64_t n,
                          double timeout):
        cdef uint64_t at
        self._count_attempt()
        if n > self.max_record:
            self._count_drop(2, n)
            return False
        if self._reserve(n, &at) and not self._wait_for_room(n, &at, timeout):
            self._count_drop(1, n)
            return False
        self._commit(at, rtype, buf, n)
        self._publish()
        return True

    def write_many_wait(self, int rtype, records, double timeout):
        """Like write_many(), but when the ring is full publishes what it has
        and waits (up to ``timeout`` per record) for room: lossless batches."""
        cdef Py_buffer view
        cdef uint64_t at, n
        cdef Py_ssize_t ok = 0
        self._check_write(rtype)
        for rec in records:
            PyObject_GetBuffer(rec, &view, PyBUF_SIMPLE)
            try:
                n = <uint64_t>view.len
                self._count_attempt()
                if n > self.max_record:
                    self._count_drop(2, n)
                    continue
                if self._reserve(n, &at):
                    self._publish()         # let the consumer have what we wrote
                    if not self._wait_for_room(n, &at, timeout):
                        self._count_drop(1, n)
                        continue
                self._commit(at, <uint8_t>rtype, <const unsigned char *>view.buf, n)
                ok += 1
            finally:
                PyBuffer_Release(&view)
        self._publish()
        return ok

    cdef void _count_wait(self, uint64_t ns) noexcept:
        otp_store_relaxed_u64(&self.hdr.waits, otp_load_relaxed_u64(&self.hdr.waits) + 1)
        otp_store_relaxed_u64(&self.hdr.wait_ns, otp_load_relaxed_u64(&self.hdr.wait_ns) + ns)

    def _test_torn_write(self, int rtype, data, Py_ssize_t keep):
        """Test hook: count an attempt, write the header and ``keep`` payload
        bytes of a record, and publish nothing, as a producer killed mid-write
        leaves it.  The next write overwrites it.  Tests SIGKILL right after."""
        cdef const unsigned char[::1] buf = data
        cdef uint64_t at, n = buf.shape[0]
        self._count_attempt()
        if n > self.max_record or self._reserve(n, &at):
            return False
        cdef unsigned char *p = self.data + (at & self.mask)
        _put_rec_header(p, <uint32_t>n, <uint8_t>rtype, self.committed)
        if keep > 0:
            memcpy(p + OTP_REC_HEADER, &buf[0], min(<uint64_t>keep, n))
        return True

    def publish_meta(self, uint64_t nbytes):
        """Publish that the first ``nbytes`` of the definitions file are
        complete (release: the file's bytes are written before this)."""
        if self._usable():
            otp_store_release_u64(&self.hdr.meta_bytes, nbytes)

    def stats(self):
        """This writer's own counters (what it published to the header)."""
        return {
            "pid": self.pid,
            "capacity": self.capacity,
            "max_record": self.max_record,
            "attempted": self.attempted,
            "committed": self.committed,
            "committed_bytes": self.committed_bytes,
            "dropped_full": self.dropped_full,
            "dropped_full_bytes": self.dropped_full_bytes,
            "oversize": self.oversize,
            "oversize_bytes": self.oversize_bytes,
            "write_pos": self.wpos,
        }

    def close(self, bint mark_closed=True):
        """Release the mapping.  ``mark_closed`` tells the consumer that no
        more records will come (False in a forked child, which must not touch
        its parent's ring at all)."""
        if self.closed:
            return
        if mark_closed and self._usable():
            otp_store_relaxed_u32(&self.hdr.flags, self.hdr.flags | OTP_FLAG_CLOSED)
        self.closed = True
        self.hdr = NULL
        self.data = NULL
        self.wake_word = self.wake_sleeping = NULL
        self._wake = None
        self._view = None
        _release_map(self._mm)
        self._mm = None


@cython.final
cdef class WakeWord:
    """A channel's wake-up word in shared memory: a futex sequence word and
    a "sleeping" flag (two u32 at the start of a small segment).

    Consumer: ``arm()``, poll the rings once more, then ``wait(timeout)``.
    Producer: its RingWriter, attached with ``attach_wake``, wakes the
    consumer after publishing when the flag is set.
    """
    cdef object _mm
    cdef unsigned char[::1] _view
    cdef uint32_t *word
    cdef uint32_t *sleeping

    def __cinit__(self, int fd):
        self._mm = _map(fd, 4096)
        self._view = self._mm
        self.word = <uint32_t *>&self._view[0]
        self.sleeping = <uint32_t *>&self._view[4]

    def arm(self):
        """Ask producers to wake us; returns the sequence to wait on."""
        otp_store_relaxed_u32(self.sleeping, 1)
        return otp_load_relaxed_u32(self.word)

    def wait(self, uint32_t seq, double timeout):
        """Sleep (GIL released) until the word moves past ``seq`` or
        ``timeout`` seconds pass."""
        cdef uint64_t ns = <uint64_t>(timeout * 1e9)
        if self.word == NULL:
            return
        with nogil:
            otp_futex_wait(self.word, seq, ns)
        otp_store_relaxed_u32(self.sleeping, 0)

    def disarm(self):
        otp_store_relaxed_u32(self.sleeping, 0)

    def close(self):
        self.word = self.sleeping = NULL
        self._view = None
        _release_map(self._mm)
        self._mm = None


HAVE_FUTEX = bool(OTP_HAVE_FUTEX)


cdef class RecordBatch:
    """Records scanned from one ring: columns over the ring's bytes.

    ``offsets`` index payloads in ``data`` (a read-only view of the whole
    mapping), with
    ``lengths``, ``types`` and ``seqs`` beside them.  The payload bytes stay
    valid until the batch is committed: only then may the producer reuse
    them.
    """
    cdef readonly object data
    cdef readonly object offsets
    cdef readonly object lengths
    cdef readonly object types
    cdef readonly object seqs
    cdef readonly Py_ssize_t count
    cdef readonly uint64_t nbytes
    cdef readonly uint64_t start_pos
    cdef readonly uint64_t end_pos
    cdef readonly uint64_t next_seq

    def __len__(self):
        return self.count

    def payload(self, Py_ssize_t i):
        """Zero-copy memoryview of record ``i``'s payload."""
        if i < 0 or i >= self.count:
            raise IndexError(i)
        cdef uint64_t off = self.offsets[i]
        return self.data[off:off + self.lengths[i]]

    def __iter__(self):
        cdef Py_ssize_t i
        for i in range(self.count):
            yield int(self.types[i]), self.payload(i)


_EMPTY_U64 = np.empty(0, dtype=np.uint64)
_EMPTY_U32 = np.empty(0, dtype=np.uint32)
_EMPTY_U8 = np.empty(0, dtype=np.uint8)
for _a in (_EMPTY_U64, _EMPTY_U32, _EMPTY_U8):
    _a.flags.writeable = False


@cython.final
cdef class RingReader:
    """The consumer half of one ring.

    ``scan()`` reads ahead without giving space back; ``commit(batch)`` hands
    the space of that batch (and every earlier one) back to the producer and
    records the position in shared memory, so a restarted consumer resumes
    there.  Corrupt bytes are counted and skipped by resynchronising on the
    next valid record header; the reader never reads outside the mapping.
    """
    cdef object _mm
    cdef object _ro             # read-only memoryview of the mapping, lent to batches
    cdef unsigned char[::1] _view
    cdef readonly object path
    cdef readonly uint64_t committed_pos
    cdef otp_ring_header *hdr
    cdef unsigned char *data
    cdef uint64_t mask
    cdef readonly uint64_t capacity
    cdef readonly uint64_t max_record
    cdef uint64_t rpos          # scan cursor (may run ahead of the committed read_pos)
    cdef uint64_t next_seq
    cdef uint64_t delivered
    cdef uint64_t delivered_bytes
    cdef uint64_t corrupt
    cdef uint64_t corrupt_bytes
    cdef uint64_t last_bad_wpos
    cdef readonly uint64_t corrupt_records
    cdef uint64_t scanned_to    # furthest position scanned (see _fresh)
    cdef int _fd                # not owned: the caller closes it after close()
    cdef uint64_t _size
    cdef int _slot              # SIGBUS guard slot (sigbus_guard.h), -1 if none

    def __cinit__(self, int fd, uint64_t file_size, path=None):
        self.path = path
        self._fd = fd
        self._size = file_size
        self._slot = -1
        if file_size < OTP_HEADER_SIZE + 64:
            raise ValueError(f"{path}: segment of {file_size} bytes is too small for a ring")
        if _file_size(fd) < file_size:
            raise RingTruncated(f"{path}: ring file is shorter than {file_size} bytes")
        _sweep_lingering()
        self._mm = _map(fd, file_size)
        self._view = self._mm
        otp_guard_install()
        self._slot = otp_guard_register(&self._view[0], file_size)
        self.hdr = <otp_ring_header *>&self._view[0]
        if otp_load_acquire_u64(&self.hdr.magic) != OTP_RING_MAGIC:
            self._fail(f"{path}: not an otelplug ring (bad magic)")
        if self.hdr.version != OTP_RING_VERSION or self.hdr.header_size != OTP_HEADER_SIZE:
            self._fail(f"{path}: ring layout version {self.hdr.version} is not supported")
        cdef uint64_t cap = self.hdr.capacity
        if not _is_pow2(cap) or cap < 64 or OTP_HEADER_SIZE + cap != file_size:
            self._fail(f"{path}: ring capacity {cap} does not match its file size {file_size}")
        self.capacity = cap
        self.mask = cap - 1
        # clamp: a hostile header must not make us trust huge lengths
        self.max_record = max_payload_for(cap, self.hdr.max_record)
        self.data = &self._view[OTP_HEADER_SIZE]
        self._ro = memoryview(self._mm).toreadonly()
        self.rpos = otp_load_acquire_u64(&self.hdr.read_pos)
        self.next_seq = self.hdr.next_seq
        self.delivered = self.hdr.delivered
        self.delivered_bytes = self.hdr.delivered_bytes
        self.corrupt = self.hdr.corrupt
        self.corrupt_bytes = self.hdr.corrupt_bytes
        self.corrupt_records = self.hdr.corrupt_records
        cdef uint64_t w = otp_load_acquire_u64(&self.hdr.write_pos)
        if (self.rpos & 7) or w - self.rpos > cap:
            # an impossible saved position: skip to the producer's position
            self._count_corrupt(w - self.rpos if w - self.rpos <= cap else 0)
            self.rpos = w
        self.committed_pos = self.rpos
        self.scanned_to = self.rpos
        self.hdr.consumer_pid = <uint32_t>getpid()

    cdef _fail(self, msg):
        self._view = None
        self._ro = None
        _release_guarded(self._mm, self._slot)
        self._mm = None
        self.hdr = NULL
        raise ValueError(msg)

    cdef int _check(self, bint stat_file=False) except -1:
        """Before touching the mapping: still open, and the file not shrunk.
        The SIGBUS guard's mark costs one load and catches every fault;
        ``stat_file`` (scan, when there are bytes to read) also compares the
        size with fstat (a system call), so a shrunk file is noticed before
        a read faults."""
        if self.hdr == NULL:
            raise ValueError("reader is closed")
        if otp_guard_hit(self._slot):
            raise RingTruncated(f"{self.path}: ring file was truncated while mapped")
        if stat_file and _file_size(self._fd) < self._size:
            raise RingTruncated(f"{self.path}: ring file shrank below {self._size} bytes")
        return 0

    def __dealloc__(self):
        if self._mm is not None:    # never closed: keep it guarded until unmapped
            _release_guarded(self._mm, self._slot)

    def truncated(self):
        """True once the file has shrunk under the mapping."""
        return bool(otp_guard_hit(self._slot)) or _file_size(self._fd) < self._size

    cdef void _count_corrupt(self, uint64_t skipped) noexcept:
        self.corrupt += 1
        self.corrupt_bytes += skipped
        otp_store_relaxed_u64(&self.hdr.corrupt, self.corrupt)
        otp_store_relaxed_u64(&self.hdr.corrupt_bytes, self.corrupt_bytes)

    cdef bint _fresh(self, uint64_t pos) noexcept:
        """True unless ``pos`` was already scanned (a rescan after rewind()
        must not count the same loss twice)."""
        return pos - self.committed_pos >= self.scanned_to - self.committed_pos

    cdef void _count_lost(self, uint64_t at, uint64_t n) noexcept:
        if n and self._fresh(at):
            self.corrupt_records += n
            otp_store_relaxed_u64(&self.hdr.corrupt_records, self.corrupt_records)

    cdef bint _header_ok(self, uint64_t pos, uint64_t avail, bint strict_seq) noexcept:
        cdef uint64_t idx = pos & self.mask
        cdef unsigned char *p = self.data + idx
        cdef uint32_t length = (<uint32_t *>p)[0]
        cdef uint8_t rtype = p[4]
        cdef uint16_t check = (<uint16_t *>(p + 6))[0]
        cdef uint64_t seq = (<uint64_t *>(p + 8))[0]
        cdef uint64_t span
        if p[5] != 0 or check != otp_header_check(length, rtype, seq):
            return False
        if strict_seq and seq != self.next_seq:
            return False
        if rtype == OTP_TYPE_PAD:
            return <uint64_t>length + OTP_REC_HEADER == self.capacity - idx and avail >= self.capacity - idx
        if length > self.max_record:
            return False
        span = otp_record_span(length)
        return span <= avail and idx + span <= self.capacity

    def meta_bytes(self):
        """How much of the definitions file is complete (acquire)."""
        self._check()
        return otp_load_acquire_u64(&self.hdr.meta_bytes)

    def pending_bytes(self):
        """Committed bytes not yet scanned."""
        self._check()
        return otp_load_acquire_u64(&self.hdr.write_pos) - self.rpos

    def scan(self, Py_ssize_t max_records=4096, uint64_t max_bytes=1 << 24):
        """Read up to ``max_records`` records (and about ``max_bytes``
        payload bytes) past the scan cursor into a RecordBatch."""
        cdef RecordBatch b = RecordBatch.__new__(RecordBatch)
        cdef cnp.ndarray offsets, lengths, types, seqs
        cdef uint64_t *o_v
        cdef uint32_t *l_v
        cdef uint8_t *t_v
        cdef uint64_t *s_v
        cdef cnp.npy_intp alloc
        cdef Py_ssize_t n = 0
        cdef uint64_t nbytes = 0
        cdef uint64_t pos = self.rpos, start = self.rpos, skip_from, found
        cdef uint64_t w, avail, idx, length
        cdef unsigned char *p
        self._check()
        w = otp_load_acquire_u64(&self.hdr.write_pos)
        # stat only when there is something to read: an idle ring costs one
        # load (and the guard's mark if even the header page was cut off)
        self._check(w != pos)
        if w - pos > self.capacity or (w & 7) != (pos & 7):
            # the shared write position is impossible: corrupt header
            if w != self.last_bad_wpos:
                self.last_bad_wpos = w
                self._count_corrupt(0)
            w = pos
        if w == pos:
            # nothing new: no column allocation (an idle ring costs one load)
            b.data = self._ro
            b.offsets = _EMPTY_U64
            b.lengths = _EMPTY_U32
            b.types = _EMPTY_U8
            b.seqs = _EMPTY_U64
            b.count = 0
            b.nbytes = 0
            b.start_pos = pos
            b.end_pos = pos
            b.next_seq = self.next_seq
            return b
        # a record takes at least 16 bytes: no more columns than can be filled
        alloc = <Py_ssize_t>min(<uint64_t>max_records, (w - pos) // OTP_REC_HEADER + 1)
        # C-API allocation and raw pointers: np.empty() plus typed-memoryview
        # acquisition cost ~1.5 us per scan, whatever the batch size
        offsets = cnp.PyArray_EMPTY(1, &alloc, cnp.NPY_UINT64, 0)
        lengths = cnp.PyArray_EMPTY(1, &alloc, cnp.NPY_UINT32, 0)
        types = cnp.PyArray_EMPTY(1, &alloc, cnp.NPY_UINT8, 0)
        seqs = cnp.PyArray_EMPTY(1, &alloc, cnp.NPY_UINT64, 0)
        o_v = <uint64_t *>cnp.PyArray_DATA(offsets)
        l_v = <uint32_t *>cnp.PyArray_DATA(lengths)
        t_v = <uint8_t *>cnp.PyArray_DATA(types)
        s_v = <uint64_t *>cnp.PyArray_DATA(seqs)
        while pos != w and n < max_records and nbytes < max_bytes:
            idx = pos & self.mask
            avail = w - pos
            if self.capacity - idx < OTP_REC_HEADER:
                pos += self.capacity - idx      # implicit padding
                continue
            if avail < OTP_REC_HEADER or not self._header_ok(pos, avail, True):
                if avail >= OTP_REC_HEADER and self._header_ok(pos, avail, False):
                    # a valid record whose sequence number is ahead: the
                    # records in between were lost (in bytes skipped earlier)
                    found = (<uint64_t *>(self.data + idx + 8))[0]
                    self._count_lost(pos, _lost_records(found, self.next_seq, self.capacity))
                    self.next_seq = found
                    continue
                # resynchronise: next 8-aligned position holding a valid header
                skip_from = pos
                pos += OTP_REC_ALIGN
                while pos != w:
                    idx = pos & self.mask
                    if self.capacity - idx < OTP_REC_HEADER:
                        pos += self.capacity - idx
                        continue
                    if w - pos >= OTP_REC_HEADER and self._header_ok(pos, w - pos, False):
                        break
                    pos += OTP_REC_ALIGN
                if self._fresh(skip_from):
                    self._count_corrupt(pos - skip_from)
                if pos == w:
                    break
                found = (<uint64_t *>(self.data + (pos & self.mask) + 8))[0]
                self._count_lost(skip_from, _lost_records(found, self.next_seq, self.capacity))
                self.next_seq = found
                continue
            p = self.data + idx
            length = (<uint32_t *>p)[0]
            if p[4] == OTP_TYPE_PAD:
                pos += self.capacity - idx
                continue
            o_v[n] = OTP_HEADER_SIZE + idx + OTP_REC_HEADER
            l_v[n] = <uint32_t>length
            t_v[n] = p[4]
            s_v[n] = self.next_seq
            n += 1
            nbytes += length
            self.next_seq += 1
            pos += otp_record_span(length)
        self.rpos = pos
        if self._fresh(pos):
            self.scanned_to = pos
        b.data = self._ro
        b.offsets = offsets[:n]
        b.lengths = lengths[:n]
        b.types = types[:n]
        b.seqs = seqs[:n]
        b.count = n
        b.nbytes = nbytes
        b.start_pos = start
        b.end_pos = pos
        b.next_seq = self.next_seq
        return b

    def commit(self, RecordBatch batch):
        """Give the space of ``batch`` and all earlier batches back."""
        self._check()
        if batch.end_pos - self.committed_pos > self.capacity:
            raise ValueError("batch does not belong to this reader's unread range")
        self.delivered += <uint64_t>batch.count
        self.delivered_bytes += batch.nbytes
        self.committed_pos = batch.end_pos
        otp_store_relaxed_u64(&self.hdr.delivered, self.delivered)
        otp_store_relaxed_u64(&self.hdr.delivered_bytes, self.delivered_bytes)
        otp_store_relaxed_u64(&self.hdr.next_seq, batch.next_seq)
        otp_store_release_u64(&self.hdr.read_pos, batch.end_pos)

    def rewind(self):
        """Forget scanned-but-uncommitted batches; the next scan re-reads them."""
        self._check()
        self.rpos = self.committed_pos
        self.next_seq = self.hdr.next_seq

    def header(self):
        """A snapshot of the shared header's counters (racy but untorn)."""
        cdef otp_ring_header *h = self.hdr
        self._check()
        return {
            "pid": h.pid,
            "flags": otp_load_relaxed_u32(&h.flags),
            "capacity": h.capacity,
            "max_record": h.max_record,
            "created_ns": h.created_ns,
            "write_pos": otp_load_acquire_u64(&h.write_pos),
            "read_pos": otp_load_relaxed_u64(&h.read_pos),
            "attempted": otp_load_relaxed_u64(&h.attempted),
            "committed": otp_load_relaxed_u64(&h.committed),
            "committed_bytes": otp_load_relaxed_u64(&h.committed_bytes),
            "dropped_full": otp_load_relaxed_u64(&h.dropped_full),
            "dropped_full_bytes": otp_load_relaxed_u64(&h.dropped_full_bytes),
            "oversize": otp_load_relaxed_u64(&h.oversize),
            "oversize_bytes": otp_load_relaxed_u64(&h.oversize_bytes),
            "delivered": otp_load_relaxed_u64(&h.delivered),
            "delivered_bytes": otp_load_relaxed_u64(&h.delivered_bytes),
            "corrupt": otp_load_relaxed_u64(&h.corrupt),
            "corrupt_bytes": otp_load_relaxed_u64(&h.corrupt_bytes),
            "corrupt_records": otp_load_relaxed_u64(&h.corrupt_records),
            "waits": otp_load_relaxed_u64(&h.waits),
            "wait_ns": otp_load_relaxed_u64(&h.wait_ns),
        }

    def close(self):
        if self.hdr == NULL:
            return
        self.hdr = NULL
        self.data = NULL
        self._view = None
        self._ro = None
        _release_guarded(self._mm, self._slot)
        self._slot = -1
        self._mm = None


def layout_offsets():
    """Offsets of the C header struct, for the layout-agreement test."""
    cdef otp_ring_header h
    cdef size_t base = <size_t>&h
    return {
        "magic": <size_t>&h.magic - base,
        "version": <size_t>&h.version - base,
        "capacity": <size_t>&h.capacity - base,
        "max_record": <size_t>&h.max_record - base,
        "pid": <size_t>&h.pid - base,
        "flags": <size_t>&h.flags - base,
        "start_pos": <size_t>&h.start_pos - base,
        "meta_bytes": <size_t>&h.meta_bytes - base,
        "write_pos": <size_t>&h.write_pos - base,
        "attempted": <size_t>&h.attempted - base,
        "committed": <size_t>&h.committed - base,
        "dropped_full": <size_t>&h.dropped_full - base,
        "oversize": <size_t>&h.oversize - base,
        "read_pos": <size_t>&h.read_pos - base,
        "delivered": <size_t>&h.delivered - base,
        "corrupt": <size_t>&h.corrupt - base,
        "next_seq": <size_t>&h.next_seq - base,
        "consumer_pid": <size_t>&h.consumer_pid - base,
        "corrupt_records": <size_t>&h.corrupt_records - base,
        "waits": <size_t>&h.waits - base,
    }
