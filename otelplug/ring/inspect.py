"""Read-only inspection of ring segments, for ``otelplug top``.

An inspector must never disturb the rings it looks at: it opens segments
``O_RDONLY``, maps only the 4096-byte header page with ``PROT_READ`` and
never takes a lock it keeps (liveness goes through ``probe_alive``).  The
counters it reads are a racy snapshot written by other processes, so the
derived numbers are clamped where a torn read could make them negative.

Anything in the folder can go wrong under us: a ring reclaimed between the
directory listing and ``open`` simply disappears from the snapshot, and a
file that is named like a ring but is not one becomes an error entry naming
the file instead of an exception.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import layout
from .segment import (consumer_lock_held, parse_ring_name, probe_alive, read_consumer_pid,
                      shm_dir)

_M64 = (1 << 64) - 1


class NotARing(ValueError):
    """The file is named like a ring segment but its contents are not one."""


@dataclass
class RingSnapshot:
    """One producer ring's counters at one moment."""
    path: str
    channel: str
    pid: int
    alive: bool
    closed: bool            # the producer closed its ring cleanly
    capacity: int
    used_bytes: int         # write_pos - read_pos: written, not yet handed back
    attempted: int
    written: int            # records committed by the producer
    written_bytes: int
    read: int               # records delivered to (committed by) the consumer
    read_bytes: int
    dropped_full: int
    dropped_full_bytes: int
    oversize: int
    oversize_bytes: int
    corrupt: int            # corrupt regions the consumer skipped
    corrupt_bytes: int
    pending: int            # records written but not yet read
    created_ns: int
    age_s: float
    consumer_pid: int       # last consumer that opened the ring (0: none yet)
    corrupt_records: int = 0  # records lost in those regions (sequence gaps)

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.oversize

    @property
    def dropped_bytes(self) -> int:
        return self.dropped_full_bytes + self.oversize_bytes

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dropped"] = self.dropped
        d["dropped_bytes"] = self.dropped_bytes
        return d


@dataclass
class SegmentError:
    """A file that looks like a ring segment but could not be read as one."""
    path: str
    error: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChannelSnapshot:
    channel: str
    consumer_pid: int | None        # pid recorded in the channel's consumer lock file
    producers: list[RingSnapshot] = field(default_factory=list)
    errors: list[SegmentError] = field(default_factory=list)
    # whether a live process holds the consumer lock (None: no lock file);
    # a pid left in the file by a consumer that died is shown as dead
    consumer_alive: bool | None = None

    def to_dict(self) -> dict:
        return {"channel": self.channel, "consumer_pid": self.consumer_pid,
                "consumer_alive": self.consumer_alive,
                "producers": [p.to_dict() for p in self.producers],
                "errors": [e.to_dict() for e in self.errors]}


@dataclass
class Snapshot:
    directory: str
    directory_exists: bool
    time_ns: int
    channels: list[ChannelSnapshot] = field(default_factory=list)
    errors: list[SegmentError] = field(default_factory=list)   # files whose channel is unknown

    def to_dict(self) -> dict:
        return {"shm_dir": self.directory, "shm_dir_exists": self.directory_exists,
                "time_ns": self.time_ns,
                "channels": [c.to_dict() for c in self.channels],
                "errors": [e.to_dict() for e in self.errors]}


def _alive(fd: int) -> bool:
    """``probe_alive``, corrected for a segment its consumer has claimed.

    ``probe_alive`` reports True whenever the exclusive lock is refused, but
    after its producer died the consumer holds that exclusive lock itself
    (until it has drained and unlinked the ring), so a dead ring would show
    as alive.  A live producer holds a *shared* lock, which lets us take a
    shared lock too; a consumer's exclusive one does not.
    """
    if not probe_alive(fd):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False        # exclusively held: claimed by the consumer
        raise
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def _validate(hdr: dict, file_size: int) -> None:
    if hdr["magic"] != layout.MAGIC:
        raise NotARing("not an otelplug ring (bad magic)")
    if hdr["version"] != layout.VERSION or hdr["header_size"] != layout.HEADER_SIZE:
        raise NotARing(f"unsupported ring layout version {hdr['version']}")
    cap = hdr["capacity"]
    if cap < 64 or cap & (cap - 1) or layout.HEADER_SIZE + cap != file_size:
        raise NotARing(f"ring capacity {cap} does not match the file size {file_size}")


def read_ring(path: Path, now_ns: int | None = None) -> RingSnapshot:
    """Snapshot one segment.

    Raises FileNotFoundError if it vanished (reclaimed), NotARing or OSError
    if it cannot be read as a ring.
    """
    # no symlinks, no FIFOs; pread, not a mapping: a file truncated meanwhile
    # is a short read here, never a SIGBUS
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARing("not a regular file")
        size = st.st_size
        if size < layout.HEADER_SIZE + 64:
            raise NotARing(f"{size} bytes is too small for a ring")
        head = os.pread(fd, layout.HEADER_SIZE, 0)
        if len(head) < layout.HEADER_SIZE:
            raise NotARing("truncated while being read")
        hdr = layout.read_header(head)
        _validate(hdr, size)
        alive = _alive(fd)
    finally:
        os.close(fd)
    info = parse_ring_name(path.name) or {}
    now_ns = now_ns if now_ns is not None else time.time_ns()
    return RingSnapshot(
        path=str(path), channel=info.get("channel", "?"), pid=hdr["pid"], alive=alive,
        closed=bool(hdr["flags"] & layout.FLAG_CLOSED), capacity=hdr["capacity"],
        used_bytes=min((hdr["write_pos"] - hdr["read_pos"]) & _M64, hdr["capacity"]),
        attempted=hdr["attempted"],
        written=hdr["committed"], written_bytes=hdr["committed_bytes"],
        read=hdr["delivered"], read_bytes=hdr["delivered_bytes"],
        dropped_full=hdr["dropped_full"], dropped_full_bytes=hdr["dropped_full_bytes"],
        oversize=hdr["oversize"], oversize_bytes=hdr["oversize_bytes"],
        corrupt=hdr["corrupt"], corrupt_bytes=hdr["corrupt_bytes"],
        corrupt_records=hdr["corrupt_records"],
        # committed is read before delivered, so a busy ring can look "over-read"
        pending=max(0, hdr["committed"] - hdr["delivered"] - hdr["corrupt_records"]),
        created_ns=hdr["created_ns"], age_s=max(0.0, (now_ns - hdr["created_ns"]) / 1e9),
        consumer_pid=hdr["consumer_pid"],
    )


def _consumer_lock(directory: Path, channel: str) -> Path:
    """The channel's consumer lock file; the per-uid one a consumer falls
    back to when the shared name is squatted (see ConsumerLock)."""
    own = directory / f"otelplug.{channel}.consumer.{os.geteuid()}"
    return own if own.exists() else directory / f"otelplug.{channel}.consumer"


def snapshot(channel: str | None = None, directory: Path | None = None) -> Snapshot:
    """Snapshot every ring in the folder, or only those of ``channel``."""
    directory = Path(directory) if directory else shm_dir()
    now_ns = time.time_ns()
    snap = Snapshot(str(directory), directory.is_dir(), now_ns)
    if not snap.directory_exists:
        return snap
    pattern = f"otelplug.{channel}.*.ring" if channel else "otelplug.*.ring"
    channels: dict[str, ChannelSnapshot] = {}
    try:
        paths = sorted(directory.glob(pattern))
    except OSError as exc:   # e.g. the folder is not readable
        snap.errors.append(SegmentError(str(directory), str(exc)))
        return snap
    for path in paths:
        info = parse_ring_name(path.name)
        if info is None or (channel and info["channel"] != channel):
            if channel is None:
                snap.errors.append(SegmentError(str(path), "not a ring segment name"))
            continue
        ch = channels.get(info["channel"])
        if ch is None:
            lock = _consumer_lock(directory, info["channel"])
            # read without taking the lock (taking it could make a starting
            # consumer fail); a shared probe shows whether its holder lives
            ch = channels[info["channel"]] = ChannelSnapshot(
                info["channel"], read_consumer_pid(lock), consumer_alive=consumer_lock_held(lock))
        try:
            ch.producers.append(read_ring(path, now_ns))
        except FileNotFoundError:
            continue        # reclaimed between listing and opening: gone, not an error
        except (NotARing, OSError) as exc:
            ch.errors.append(SegmentError(str(path), _describe(exc)))
    snap.channels = [channels[name] for name in sorted(channels)]
    return snap


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)
