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
import stat
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


class UntrustedFile(PermissionError):
    """A ring, lock or wake file that is not safe to use: a symlink, not a
    regular file, owned by another user, or writable by others.  ``reason``
    is a short word for self-metrics."""

    def __init__(self, path, reason: str, detail: str):
        super().__init__(f"{path}: {detail}")
        self.path = Path(path)
        self.reason = reason


def trust_problem(st: os.stat_result, gid: int | None) -> tuple[str, str] | None:
    """Why a file with this ``fstat`` must not be trusted, or None.

    Trusted: a regular file owned by us (the effective uid), or, when a
    group is configured (group mode), owned by that group with group access;
    never world-writable, and group-writable only by the configured group."""
    if not stat.S_ISREG(st.st_mode):
        return "not_regular", "not a regular file"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o002:
        return "world_writable", f"writable by every user (mode {mode:04o})"
    in_group = gid is not None and st.st_gid == gid
    if st.st_uid != os.geteuid() and not (in_group and mode & 0o060 == 0o060):
        return "foreign_owner", (f"owned by uid {st.st_uid}, not by us (uid {os.geteuid()})"
                                 + ("" if gid is None else f" nor shared with group {gid}"))
    if mode & 0o020 and not in_group:
        return "group_writable", (f"writable by group {st.st_gid} (mode {mode:04o}), "
                                  "which is not the configured group")
    return None


def open_trusted(path: Path, gid: int | None = None, create_mode: int | None = None) -> int:
    """Open ``path`` read-write without following a symlink (and without
    blocking on a FIFO), creating it with ``create_mode`` if given, and check
    what was opened (``trust_problem``).  Raises UntrustedFile, or OSError
    for other failures."""
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    if create_mode is not None:
        flags |= os.O_CREAT
    try:
        fd = os.open(path, flags, create_mode or 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UntrustedFile(path, "symlink", "is a symbolic link") from None
        if exc.errno in (errno.ENXIO, errno.ENODEV):   # a FIFO or socket
            raise UntrustedFile(path, "not_regular", "not a regular file") from None
        raise
    try:
        problem = trust_problem(os.fstat(fd), gid)
        if problem:
            raise UntrustedFile(path, *problem)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _same_file(path: Path, fd: int) -> bool:
    """True while ``path`` still names the file open as ``fd`` (not unlinked
    or replaced by a later one)."""
    try:
        a, b = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _open_locked(path: Path, gid: int | None, mode: int, lock: int) -> int:
    """Open (creating) a shared file and flock it, retrying until the lock is
    held on the file the path names: a holder that was the last one out may
    have unlinked it between our open and our lock."""
    for _ in range(100):
        fd = open_trusted(path, gid, mode)
        try:
            if gid is not None and os.fstat(fd).st_uid == os.geteuid():
                os.fchown(fd, -1, gid)
            fcntl.flock(fd, lock)
        except BaseException:
            os.close(fd)
            raise
        if _same_file(path, fd):
            return fd
        os.close(fd)
    raise OSError(errno.EAGAIN, f"{path} keeps being replaced")


def _unlink_if_last(path: Path, fd: int) -> None:
    """Last one out removes a shared file: whoever gets the exclusive lock
    holds it while unlinking, so a newcomer's shared lock waits and then
    sees (``_same_file``) that it must open a fresh one."""
    if not _try_lock(fd, fcntl.LOCK_EX):
        return          # others still use it
    if _same_file(path, fd):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class WakeFile:
    """The channel's wake-up segment: a futex word an idle consumer sleeps
    on and producers bump.  Same permissions as the rings.  Producers and the
    consumer race harmlessly to create it; each holds a shared flock on it
    while it lives, and the last one to leave (cleanly) removes it.

    ``fd`` is kept open for the lock; the WakeWord maps it.  Raises
    UntrustedFile when the file at that path is not ours (a symlink, another
    owner): callers then fall back to timed polling."""

    def __init__(self, channel: str, group: str | int | None = None,
                 directory: Path | None = None):
        directory = directory or shm_dir()
        self.path = directory / f"otelplug.{channel}.wake"
        gid = _group_id(group)
        self.fd = _open_locked(self.path, gid, 0o660 if gid is not None else 0o600, fcntl.LOCK_SH)
        try:
            if os.fstat(self.fd).st_uid == os.geteuid():
                # the mode we asked for, whatever the umask made of it
                os.fchmod(self.fd, 0o660 if gid is not None else 0o600)
            os.posix_fallocate(self.fd, 0, 4096)
        except BaseException:
            os.close(self.fd)
            raise

    def release(self, unlink: bool = True) -> None:
        """Close; with ``unlink`` (a clean exit, not a forked child letting
        go of its parent's file) remove the file if no one else holds it."""
        if self.fd < 0:
            return
        if unlink:
            _unlink_if_last(self.path, self.fd)
        os.close(self.fd)
        self.fd = -1


def open_wake(channel: str, group: str | int | None = None, directory: Path | None = None) -> int:
    """A new descriptor of the channel's wake-up segment, opened safely (no
    symlinks, ours only); for inspectors that only map it."""
    directory = directory or shm_dir()
    return open_trusted(directory / f"otelplug.{channel}.wake", _group_id(group))


def open_segment(path: Path, group: str | int | None = None) -> int:
    """Open a published segment for the consumer or an inspector, refusing
    symlinks and files that are not ours (UntrustedFile)."""
    return open_trusted(path, _group_id(group))


def _try_lock(fd: int, op: int) -> bool:
    """flock without waiting: True if taken, False if another holder's lock
    conflicts."""
    try:
        fcntl.flock(fd, op | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


def producer_alive(fd: int) -> bool:
    """True while the producer that created the segment still holds its lock.

    Takes the exclusive lock when the producer is gone and keeps it, so a
    dead segment is claimed by exactly one consumer.
    """
    return not _try_lock(fd, fcntl.LOCK_EX)


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
            if now - p.stat(follow_symlinks=False).st_mtime < older_than_s:
                continue
            fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue    # gone, or a symlink / FIFO: not ours to touch
        try:
            if trust_problem(os.fstat(fd), None):
                continue        # another user's file: never ours to delete
            if not producer_alive(fd):
                p.unlink(missing_ok=True)
                removed += 1
        finally:
            os.close(fd)
    return removed


class ConsumerLock:
    """One consumer per channel: an exclusive flock on a lock file.

    A second consumer on the same channel fails at once with the first
    one's pid in the message instead of silently splitting the stream.  The
    lock file is opened without following symlinks and checked (ours, a
    regular file); one squatted by another user or replaced by a symlink is
    reported (``squatted``) and left alone, and the lock is taken on a
    per-uid file beside it instead, so a hostile file can neither stop the
    sidecar from starting nor make it truncate what a symlink points to.
    The last consumer out removes the file.
    """

    def __init__(self, channel: str, directory: Path | None = None):
        directory = directory or shm_dir()
        self.path = directory / f"otelplug.{channel}.consumer"
        self.squatted: str | None = None
        self.refused: list[tuple[Path, str, str]] = []   # (path, reason, message), for reports
        self.fd = -1
        try:
            self.fd = self._lock(channel)
        except UntrustedFile as exc:
            self.squatted = str(exc)
            self.refused.append((exc.path, exc.reason, str(exc)))
            self.path = directory / f"otelplug.{channel}.consumer.{os.geteuid()}"
            try:
                self.fd = self._lock(channel)
            except UntrustedFile as exc2:
                # both names planted: run without the one-consumer guarantee
                # rather than not at all (the caller reports it)
                self.squatted += f"; {exc2}"
                self.refused.append((exc2.path, exc2.reason, str(exc2)))
                return
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)

    def _lock(self, channel: str) -> int:
        try:
            return _open_locked(self.path, None, 0o600, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = read_consumer_pid(self.path)
            raise RuntimeError(
                f"channel {channel!r} already has a consumer (pid {other or '?'}); "
                "only one consumer may read a channel"
            ) from None

    def release(self) -> None:
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)   # inspectors must not name a ghost meanwhile
            _unlink_if_last(self.path, self.fd)
            os.close(self.fd)
            self.fd = -1


def read_consumer_pid(path: Path) -> int | None:
    """The pid a consumer wrote into a lock file (no symlinks followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    finally:
        os.close(fd)
    return int(text) if text.isdigit() else None


def consumer_lock_held(path: Path) -> bool | None:
    """Whether a live process holds the channel's consumer lock (flock: the
    kernel drops it when the holder dies); None if there is no lock file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return not _try_lock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)   # closing drops our probe lock
