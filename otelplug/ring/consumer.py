"""The consumer side: discover every producer's ring on a channel, read
batches from them, hand space back, and reclaim rings of dead producers.

Typical loop::

    with ChannelConsumer("default") as c:
        while running:
            got = c.poll()
            for ring, batch in got:
                handle(batch)          # zero-copy columns over ring bytes
                ring.commit(batch)     # only now may the producer reuse them
            c.idle(got)                # adaptive back-off when nothing came

Reading position is kept in shared memory at commit, so a consumer that
stops (or dies) and a new one that starts resumes where the last commit
left off: uncommitted batches are read again (at-least-once).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import logging

from . import impl as _impl
from .layout import RingTruncated
from .meta import MetaReader, meta_path
from .segment import (ConsumerLock, UntrustedFile, WakeFile, list_rings, open_segment,
                      parse_ring_name, producer_alive, remove_stale_temporaries,
                      resolve_channel, shm_dir)

log = logging.getLogger("otelplug.ring")


@dataclass
class ProducerAccount:
    """Final accounting of a reclaimed ring: attempted == delivered +
    dropped + corrupt_records + lost_in_flight (lost: records in flight when
    the producer died; corrupt_records: records lost in corrupt bytes)."""
    pid: int
    path: str
    attempted: int
    delivered: int
    dropped_full: int
    oversize: int
    corrupt: int              # corrupt regions (resynchronisations)
    lost_in_flight: int
    clean_close: bool
    corrupt_records: int = 0
    corrupt_bytes: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.oversize


class Ring:
    """One producer's ring as the consumer sees it."""

    def __init__(self, path: Path, impl, group=None):
        self.path = path
        self.info = parse_ring_name(path.name) or {}
        self.fd = open_segment(path, group)
        try:
            self.reader = impl.RingReader(self.fd, os.fstat(self.fd).st_size, str(path))
        except BaseException:
            os.close(self.fd)
            raise
        self.pid = self.info.get("pid")
        self.meta = MetaReader(path)
        self.dead = False
        self.last_seen_ns = time.monotonic_ns()

    def scan(self, max_records: int, max_bytes: int):
        return self.reader.scan(max_records, max_bytes)

    def commit(self, batch) -> None:
        self.reader.commit(batch)

    def header(self) -> dict:
        return self.reader.header()

    def definitions(self) -> dict[int, bytes]:
        """Every definition the producer has published so far, by key."""
        return self.meta.refresh(self.reader.meta_bytes())

    def drained(self) -> bool:
        h = self.reader.header()
        return self.reader.committed_pos == h["write_pos"]

    def close(self) -> None:
        self.reader.close()
        os.close(self.fd)


@dataclass
class ConsumerStats:
    rings_opened: int = 0
    rings_reclaimed: int = 0
    bad_segments: int = 0
    bad_segment_errors: list = field(default_factory=list)
    # ring files refused or dropped, by reason (invalid, unreadable, symlink,
    # not_regular, foreign_owner, world_writable, group_writable, truncated)
    rejected: dict = field(default_factory=dict)


class ChannelConsumer:
    """Reads every producer ring of one channel (one consumer per channel).

    Args:
        channel: channel name (default ``$OTELPLUG_CHANNEL`` or ``default``).
        discover_interval: seconds between scans of the shared-memory folder
            for new rings and liveness checks of known ones.
        max_idle_sleep: the longest back-off sleep when idle; bounds the
            delivery latency of the first record after a quiet period.
        reclaim: unlink rings of dead producers once drained (default True).
    """

    def __init__(self, channel: str | None = None, discover_interval: float = 0.1,
                 max_idle_sleep: float = 0.02, reclaim: bool = True, impl=None,
                 shm_directory: Path | None = None, group: str | int | None = None):
        self.channel = resolve_channel(channel)
        self.directory = Path(shm_directory) if shm_directory else shm_dir()
        self.group = group     # rings of this group (mode 0660) are trusted too
        self._lock = ConsumerLock(self.channel, self.directory)
        self._impl = impl or _impl.default()
        self.discover_interval = discover_interval
        self.max_idle_sleep = max_idle_sleep
        self.reclaim = reclaim
        self.rings: dict[Path, Ring] = {}
        self.retired: list[ProducerAccount] = []
        self.stats = ConsumerStats()
        self._bad: set[Path] = set()
        self._next_discover = 0.0
        self._sleep = 0.0
        self._wake = None
        self._wake_file = None
        for path, reason, message in self._lock.refused:
            self._reject_file(path, reason, message)
        if self._lock.squatted:
            log.warning("channel %s: %s", self.channel,
                        f"taking the consumer lock on {self._lock.path}" if self._lock.fd >= 0
                        else "running without a consumer lock: a second consumer is not refused")
        try:
            self._wake_file = WakeFile(self.channel, group, self.directory)
            self._wake = self._impl.WakeWord(self._wake_file.fd)
        except UntrustedFile as exc:
            self._reject_file(exc.path, exc.reason, exc)
        except OSError as exc:
            log.warning("channel %s: no wake-up file (%s); polling on a timer", self.channel, exc)
        self.discover()

    def _reject_file(self, path: Path, reason: str, exc: Exception) -> None:
        """Refuse a file for good: logged once, counted by reason."""
        self._bad.add(path)
        self.stats.bad_segments += 1
        self.stats.bad_segment_errors.append(str(exc))
        self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
        log.warning("channel %s: ignoring %s (%s): %s", self.channel, path, reason, exc)

    def _drop(self, ring: Ring, reason: str, exc: Exception) -> None:
        """Stop reading a ring that went bad under us (truncated)."""
        self.rings.pop(ring.path, None)
        try:
            ring.close()
        except (OSError, ValueError):
            pass
        self._reject_file(ring.path, reason, exc)

    # -- discovery and reclaiming --------------------------------------------
    def discover(self) -> None:
        """Open new rings, check liveness, reclaim drained dead ones."""
        self._next_discover = time.monotonic() + self.discover_interval
        for path in list_rings(self.channel, self.directory):
            if path in self.rings or path in self._bad:
                continue
            try:
                self.rings[path] = Ring(path, self._impl, self.group)
                self.stats.rings_opened += 1
            except FileNotFoundError:
                continue  # reclaimed by someone else meanwhile
            except UntrustedFile as exc:
                self._reject_file(path, exc.reason, exc)
            except RingTruncated as exc:
                self._reject_file(path, "truncated", exc)
            except ValueError as exc:
                # a file that is not a valid ring: counted, named, skipped
                self._reject_file(path, "invalid", exc)
            except OSError as exc:
                self._reject_file(path, "unreadable", exc)
        for ring in list(self.rings.values()):
            try:
                if ring.reader.truncated():     # also an idle ring, at each tick
                    raise RingTruncated(f"{ring.path}: ring file shrank under the reader")
                if not ring.dead and not producer_alive(ring.fd):
                    ring.dead = True
                if ring.dead and self.reclaim and ring.drained():
                    self._reclaim(ring)
            except RingTruncated as exc:
                self._drop(ring, "truncated", exc)
        remove_stale_temporaries(self.channel, self.directory)

    def _reclaim(self, ring: Ring) -> None:
        h = ring.header()
        # records lost in a corrupt tail have no later sequence number to
        # reveal them while reading; the producer's final count does
        corrupt_records = max(h["corrupt_records"], h["committed"] - h["delivered"])
        account = ProducerAccount(
            pid=h["pid"], path=str(ring.path), attempted=h["attempted"],
            delivered=h["delivered"], dropped_full=h["dropped_full"],
            oversize=h["oversize"], corrupt=h["corrupt"],
            lost_in_flight=max(0, h["attempted"] - h["delivered"] - corrupt_records
                               - h["dropped_full"] - h["oversize"]),
            clean_close=bool(h["flags"] & 1),
            corrupt_records=corrupt_records, corrupt_bytes=h["corrupt_bytes"],
        )
        self.retired.append(account)
        del self.rings[ring.path]
        ring.path.unlink(missing_ok=True)
        meta_path(ring.path).unlink(missing_ok=True)
        ring.close()
        self.stats.rings_reclaimed += 1

    # -- reading --------------------------------------------------------------
    def poll(self, max_records: int = 4096, max_bytes: int = 1 << 24):
        """One pass over all rings: a list of (ring, batch) with records."""
        if time.monotonic() >= self._next_discover:
            self.discover()
        out = []
        for ring in list(self.rings.values()):
            try:
                batch = ring.scan(max_records, max_bytes)
            except RingTruncated as exc:
                self._drop(ring, "truncated", exc)
                continue
            # a batch of only skipped bytes (corrupt, padding) is returned
            # too: committing it is what moves the ring past them
            if batch.count or batch.end_pos != batch.start_pos:
                out.append((ring, batch))
        return out

    def idle(self, got) -> None:
        """Back off while nothing arrives: no sleep while busy, then sleeps
        doubling from 50 us to ``max_idle_sleep``.  Longer sleeps wait on
        the channel's futex word, so a producer's next publish ends them at
        once; the timeout bounds the delay if a wake-up is missed."""
        if got:
            self._sleep = 0.0
            return
        self._sleep = min(self.max_idle_sleep, max(50e-6, self._sleep * 2))
        if self._wake is None or self._sleep < 1e-3:
            time.sleep(self._sleep)
            return
        seq = self._wake.arm()
        # a record published before the flag was visible is not slept on
        if any(self._pending(r) for r in list(self.rings.values())):
            self._wake.disarm()
            return
        self._wake.wait(seq, self._sleep)

    def _pending(self, ring: Ring) -> int:
        try:
            return ring.reader.pending_bytes()
        except RingTruncated as exc:
            self._drop(ring, "truncated", exc)
            return 0

    def _drained(self, ring: Ring) -> bool:
        try:
            return ring.drained()
        except RingTruncated as exc:
            self._drop(ring, "truncated", exc)
            return True

    def drain(self, handle=None, timeout: float = 10.0, until_no_producers: bool = False):
        """Read and commit until every ring is empty (and, with
        ``until_no_producers``, every producer has gone and been reclaimed).
        ``handle(ring, batch)`` is called for each batch before it is
        committed.  Returns the number of records handled."""
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            got = self.poll()
            for ring, batch in got:
                if handle is not None:
                    handle(ring, batch)
                n += batch.count
                ring.commit(batch)
            if not got:
                self.discover()
                empty = all([self._drained(r) for r in list(self.rings.values())])
                if empty and (not until_no_producers or not self.rings):
                    return n
            self.idle(got)
        return n

    def producers(self) -> list[dict]:
        """Live view of every known ring's shared counters."""
        out = []
        for ring in list(self.rings.values()):
            try:
                h = ring.header()
            except RingTruncated as exc:
                self._drop(ring, "truncated", exc)
                continue
            h["path"] = str(ring.path)
            h["dead"] = ring.dead
            out.append(h)
        return out

    def close(self) -> None:
        for ring in list(self.rings.values()):
            ring.close()
        self.rings.clear()
        if self._wake is not None:
            self._wake.close()
            self._wake = None
        if self._wake_file is not None:
            self._wake_file.release()      # the last one out removes it
            self._wake_file = None
        self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
