"""Segment files: where rings live, how they are named, published and found.

A ring is a file in the shared-memory folder (``/dev/shm``, or
``$OTELPLUG_SHM_DIR``) named ``otelplug.<channel>.<pid>.<nonce>.ring``.

Liveness is an ``flock``: the producer holds a shared lock on its segment
for as long as it lives; the kernel drops it when the process dies, however
it dies.  The consumer tests with a non-blocking exclusive lock.  Unlike a
pid check this survives pid reuse and pid namespaces.  So that the consumer
never sees a segment before its producer holds the lock and has written the
header, the producer builds the segment under a hidden temporary name and
renames it into place (rename is atomic).
"""
from __future__ import annotations

import errno
import fcntl
import grp
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CHANNEL = "default"
CHANNEL_ENV = "OTELPLUG_CHANNEL"
SHM_DIR_ENV = "OTELPLUG_SHM_DIR"
_CHANNEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RING_RE = re.compile(r"^otelplug\.(?P<channel>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\.(?P<nonce>[0-9a-f]+)\.ring$")


def shm_dir() -> Path:
    return Path(os.environ.get(SHM_DIR_ENV) or "/dev/shm")


def resolve_channel(channel: str | None = None) -> str:
    """The channel name: the argument, else ``$OTELPLUG_CHANNEL``, else ``default``."""
    name = channel or os.environ.get(CHANNEL_ENV) or DEFAULT_CHANNEL
    if not _CHANNEL_RE.match(name):
        raise ValueError(
            f"invalid otelplug channel name {name!r}: use 1-64 characters from A-Z a-z 0-9 _ -"
        )
    return name


def ring_glob(channel: str) -> str:
    return f"otelplug.{channel}.*.ring"


def parse_ring_name(name: str) -> dict | None:
    m = _RING_RE.match(name)
    if not m:
        return None
    return {"channel": m["channel"], "pid": int(m["pid"]), "nonce": m["nonce"]}


def _group_id(group: str | int | None) -> int | None:
    if group is None or group == "":
        return None
    if isinstance(group, int) or str(group).isdigit():
        return int(group)
    return grp.getgrnam(str(group)).gr_gid


@dataclass
class NewSegment:
    fd: int
    tmp_path: Path
    path: Path

    def publish(self) -> None:
        os.rename(self.tmp_path, self.path)

    def abandon(self) -> None:
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass
        os.close(self.fd)


def create_segment(channel: str, size: int, group: str | int | None = None,
                   directory: Path | None = None) -> NewSegment:
    """Create and size a segment file, owner-only (0600) unless ``group``
    is given (then 0660 and owned by that group), and take the producer's
    liveness lock on it.  The caller initialises it and calls ``publish()``.
    """
    directory = directory or shm_dir()
    pid = os.getpid()
    nonce = os.urandom(4).hex()
    final = directory / f"otelplug.{channel}.{pid}.{nonce}.ring"
    tmp = directory / f".otelplug.{channel}.{pid}.{nonce}.init"
    gid = _group_id(group)
    mode = 0o660 if gid is not None else 0o600
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        if gid is not None:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)  # the umask must not widen or narrow it
        # reserve every page now: a sparse file on a full tmpfs would kill
        # the app with SIGBUS on its first write to an unbacked page; this
        # way a full /dev/shm is an error here, counted by the producer
        os.posix_fallocate(fd, 0, size)
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return NewSegment(fd, tmp, final)


def open_wake(channel: str, group: str | int | None = None, directory: Path | None = None) -> int:
    """Open (creating if needed) the channel's wake-up segment: a futex word
    an idle consumer sleeps on and producers bump.  Same permissions as the
    rings.  Creation is idempotent, so producers and the consumer race
    harmlessly to make it."""
    directory = directory or shm_dir()
    gid = _group_id(group)
    mode = 0o660 if gid is not None else 0o600
    fd = os.open(directory / f"otelplug.{channel}.wake", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    try:
        os.posix_fallocate(fd, 0, 4096)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_segment(path: Path) -> int:
    """Open a published segment for the consumer or an inspector."""
    return os.open(path, os.O_RDWR | os.O_CLOEXEC)


def producer_alive(fd: int) -> bool:
    """True while the producer that created the segment still holds its lock.

    Takes the exclusive lock when the producer is gone and keeps it, so a
    dead segment is claimed by exactly one consumer.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    return False


def probe_alive(fd: int) -> bool:
    """Like producer_alive, but claims nothing: for inspectors (``otelplug
    top``).  An exclusive lock held by someone else is a consumer that has
    already claimed the dead segment, not a live producer (whose lock is
    shared, so a shared probe succeeds beside it)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc2:
            if exc2.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False     # a consumer holds it exclusively: producer gone
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def list_rings(channel: str, directory: Path | None = None) -> list[Path]:
    """The channel's ring files.  A plain scandir with a prefix test: the
    consumer calls this every discovery tick, and pathlib's glob cost about
    7% of an otherwise idle sidecar."""
    directory = directory or shm_dir()
    prefix = f"otelplug.{channel}."
    try:
        with os.scandir(directory) as it:
            names = [e.name for e in it if e.name.startswith(prefix) and e.name.endswith(".ring")]
    except FileNotFoundError:
        return []
    return [directory / n for n in sorted(names) if parse_ring_name(n)]


def list_channels(directory: Path | None = None) -> list[str]:
    directory = directory or shm_dir()
    names = set()
    for p in directory.glob("otelplug.*.ring"):
        info = parse_ring_name(p.name)
        if info:
            names.add(info["channel"])
    return sorted(names)


def remove_stale_temporaries(channel: str, directory: Path | None = None,
                             older_than_s: float = 10.0) -> int:
    """Delete half-built segments whose producer died before publishing."""
    directory = directory or shm_dir()
    removed = 0
    now = time.time()
    for p in directory.glob(f".otelplug.{channel}.*.init"):
        try:
            if now - p.stat().st_mtime < older_than_s:
                continue
            fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            if not producer_alive(fd):
                p.unlink(missing_ok=True)
                removed += 1
        finally:
            os.close(fd)
    return removed


class ConsumerLock:
    """One consumer per channel: an exclusive flock on a lock file.

    A second consumer on the same channel fails at once with the first
    one's pid in the message instead of silently splitting the stream.
    """

    def __init__(self, channel: str, directory: Path | None = None):
        directory = directory or shm_dir()
        self.path = directory / f"otelplug.{channel}.consumer"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
            os.close(self.fd)
            raise RuntimeError(
                f"channel {channel!r} already has a consumer (pid {other or '?'}); "
                "only one consumer may read a channel"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        # the file stays (unlinking a lock file races with the next consumer
        # opening it); clearing the pid keeps inspectors from naming a ghost
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = -1
