"""shm: the receiver that drains producers' rings.

It releases ring space only once the data is safe (every pipeline's
exporter has it in a persistent queue or the destination acknowledged it,
or a processor dropped it on purpose), committing each ring's batches in
ring order.  If a pipeline refuses data (memory_limiter), the ring is
rewound to its committed position and read again later: the data waits in
shared memory, and what other pipelines already took may arrive twice
(at-least-once, duplicates bounded by what was in flight).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from otelplug.ring import ChannelConsumer

from ..ack import Ack
from ..component import Factory, Kind
from ..config.decode import Duration
from ..consumer import Refused
from otelplug.codec.recordset import RecordSet
from ..signals import ITEM_WORD, RECORD_TYPE
from .ring_checks import check_logs, check_metrics, check_spans

log = logging.getLogger("otelplug.sidecar")


@dataclass
class ShmReceiverConfig:
    """``channels``: the channels whose rings are read; "" is
    $OTELPLUG_CHANNEL, else ``default``.

    ``max_batch_records``: records taken from the rings per poll at most.

    ``discover_interval``: seconds between scans of the shared-memory folder
    for new rings.

    ``max_idle_sleep``: the longest back-off sleep while every ring is empty.

    ``min_poll_interval``: a poll that finds fewer than max_batch_records
    waits this long after the previous one; 0 polls again at once.

    ``refused_backoff``: the wait before reading again after the pipeline
    refused a batch (the records stay in the ring).

    ``group``: also trust rings owned by this group with group access; ""
    trusts only rings owned by the sidecar's own user.
    """
    channels: list[str] = field(default_factory=lambda: [""])   # "": $OTELPLUG_CHANNEL or default
    max_batch_records: int = 4096
    discover_interval: Duration = Duration(0.1)
    max_idle_sleep: Duration = Duration(0.02)
    # a poll that finds less than max_batch_records waits this long after
    # the previous one: at a trickle, polling flat out hands the pipeline a
    # batch of one or two records per poll, and the per-batch costs (masks,
    # acks, pipeline calls, commit) then dominate: ~20 us a span at 10k/s.
    # The batch processor waits far longer anyway.  0: poll again at once.
    min_poll_interval: Duration = Duration(0.02)
    refused_backoff: Duration = Duration(0.05)
    # group mode: also trust rings owned by this group with group access
    # (producers with group=...); otherwise only rings owned by our uid
    group: str = ""

    def validate(self):
        errs = []
        if not self.channels:
            errs.append((("channels",), "must list at least one channel"))
        if self.max_batch_records < 1:
            errs.append((("max_batch_records",), "must be at least 1"))
        from otelplug.ring.segment import _group_id, resolve_channel
        if self.group:
            try:
                _group_id(self.group)
            except KeyError:
                errs.append((("group",), f"no such group {self.group!r}"))
        for i, ch in enumerate(self.channels):
            try:
                resolve_channel(ch or None)
            except ValueError as exc:
                errs.append((("channels", str(i)), str(exc)))
        return errs


class _Tracker:
    """Scanned-but-uncommitted batches of one ring, in ring order."""

    def __init__(self, ring):
        self.ring = ring
        self.pending: deque = deque()     # [batch, settled?]
        self.gen = 0
        self.defs_checked = 0             # definitions decoded once (see _checked_definitions)
        self.meta_errors = 0
        self.refused_below = 0            # record sequence below which refusals were counted


class ShmReceiver:
    def __init__(self, settings, config: ShmReceiverConfig, consumers: dict):
        self.id = str(settings.id)
        self.config = config
        self.consumers = consumers
        self.service_host = None
        tel = settings.telemetry
        lab = ("receiver", "transport")
        self._accepted = {s: tel.counter(f"receiver_accepted_{w}", f"{w} accepted by the receiver", lab)
                          for s, w in ITEM_WORD.items()}
        self._refused = {s: tel.counter(f"receiver_refused_{w}", f"{w} refused by the pipeline", lab)
                         for s, w in ITEM_WORD.items()}
        self._refused_again = tel.counter(
            "receiver_refused_again_items",
            "Items refused again when read again from a ring after an earlier refusal (counted "
            "in receiver_refused_* the first time only)", ("receiver", "transport", "otel_signal"))
        self._unrouted = tel.counter("receiver_unrouted_records",
                                     "Ring records of a signal no pipeline takes, or of an unknown type",
                                     ("receiver", "record_type"))
        self._ring_dropped = tel.gauge("ring_dropped_records",
                                       "Records producers dropped because their ring was full or the record oversize",
                                       ("channel", "pid", "reason"))
        self._ring_pending = tel.gauge("ring_pending_bytes", "Committed ring bytes not yet read",
                                       ("channel", "pid"))
        self._lost = tel.counter("ring_lost_in_flight_records",
                                 "Records being written when their producer died", ("channel",))
        self._corrupt = tel.counter("ring_corrupt_records",
                                    "Corrupt ring records detected and skipped",
                                    ("channel", "record_type"))
        self._corrupt_bytes = tel.counter("ring_corrupt_bytes",
                                          "Ring bytes skipped as corrupt while resynchronising",
                                          ("channel",))
        self._rejected = tel.counter("ring_rejected_files",
                                     "Ring files refused or dropped: not a ring, unreadable, "
                                     "untrusted owner or mode, symlink, truncated",
                                     ("channel", "reason"))
        self._corrupt_seen: dict[str, tuple[int, int]] = {}   # ring path -> counted (records, bytes)
        self._rejected_seen: dict[tuple, int] = {}
        self._retired_dropped = tel.counter("ring_retired_dropped_records",
                                            "Records dropped by producers that have exited", ("channel",))
        self._producers = tel.gauge("ring_producers", "Producer rings being read", ("channel",))
        tel.on_collect(self._refresh_ring_metrics)
        self._settled: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = None
        self.chan: dict[str, ChannelConsumer] = {}
        self._trackers: dict = {}
        self._retired_seen: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------
    def claims(self) -> list[str]:
        """What it holds exclusively while running (see Service.claims)."""
        from otelplug.ring.segment import resolve_channel
        return [f"shm channel {resolve_channel(ch or None)}" for ch in self.config.channels]

    def start(self, host) -> None:
        for ch in self.config.channels:
            c = ChannelConsumer(ch or None, discover_interval=float(self.config.discover_interval),
                                max_idle_sleep=float(self.config.max_idle_sleep),
                                group=self.config.group or None)
            self.chan[c.channel] = c
        self._thread = threading.Thread(target=self._run, name=f"{self.id}", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        for c in self.chan.values():
            c.close()

    # -- the loop --------------------------------------------------------------
    def _run(self) -> None:
        idle_owner = next(iter(self.chan.values()))
        interval = float(self.config.min_poll_interval)
        full_at = self.config.max_batch_records
        while not self._stop.is_set():
            polled_at = time.monotonic()
            self._apply_settled()
            got_any = []
            full = False
            for name, c in self.chan.items():
                try:
                    got = c.poll(self.config.max_batch_records)
                except Exception:
                    log.exception("%s: polling channel %s failed", self.id, name)
                    got = []
                for ring, batch in got:
                    got_any.append(1)
                    full = full or batch.count >= full_at
                    if self._deliver(name, ring, batch):
                        break  # refused: back off before reading more
            self._apply_settled()
            self._retire(idle_owner)
            idle_owner.idle(got_any)
            if got_any and not full and interval > 0:
                # a trickle: let records gather in the ring (not when a
                # batch came back full: then more is waiting)
                rest = interval - (time.monotonic() - polled_at)
                if rest > 0:
                    self._stop.wait(rest)
        self._apply_settled()

    def _tracker(self, ring) -> _Tracker:
        t = self._trackers.get(str(ring.path))
        if t is None or t.ring is not ring:
            t = self._trackers[str(ring.path)] = _Tracker(ring)
        return t

    def _deliver(self, channel: str, ring, batch) -> bool:
        """Hand one ring batch to the pipelines; True if it was refused."""
        tracker = self._tracker(ring)
        entry = [batch, False]
        tracker.pending.append(entry)
        gen = tracker.gen
        ack = Ack(lambda a, t=tracker, g=gen, e=entry: self._settled.put((t, g, e)))
        defs = self._checked_definitions(channel, tracker)
        types = batch.types
        refused = False
        handled = np.zeros(len(types), dtype=bool)
        lab = {"receiver": self.id, "transport": "shm"}
        present = set(np.unique(types).tolist()) if len(types) else set()
        for signal, rtype in RECORD_TYPE.items():
            if rtype not in present:
                continue
            mask = None if len(present) == 1 else types == rtype
            n = len(types) if mask is None else int(mask.sum())
            handled |= True if mask is None else mask
            consumer = self.consumers.get(signal)
            if consumer is None:
                self._unrouted.add(n, receiver=self.id, record_type=signal)
                continue
            if mask is None:      # the common case: one signal per batch, no copies
                rs = RecordSet(signal, batch.data, batch.offsets, batch.lengths, defs, (ack,))
            else:
                rs = RecordSet(signal, batch.data, batch.offsets[mask], batch.lengths[mask], defs, (ack,))
            rs = self._valid(channel, rs)
            if not len(rs):
                continue
            ack.hold()
            try:
                consumer.consume(rs)
                self._accepted[signal].add(rs.items, **lab)
            except Refused:
                refused = True
                # records read again after a rewind were counted when first refused
                seqs = batch.seqs if mask is None else batch.seqs[mask]
                first = rs.items * int((seqs >= tracker.refused_below).sum()) // max(len(rs), 1)
                self._refused[signal].add(first, **lab)
                self._refused_again.add(rs.items - first, otel_signal=signal, **lab)
            except Exception:
                log.exception("%s: pipeline failed on %d %s", self.id, rs.items, ITEM_WORD[signal])
                self._refused[signal].add(rs.items, **lab)
                ack.settle(ok=False)
        unknown = int((~handled).sum())
        if unknown:
            self._unrouted.add(unknown, receiver=self.id, record_type="unknown")
        if refused:
            if batch.count:
                tracker.refused_below = max(tracker.refused_below, int(batch.seqs[-1]) + 1)
            # read it all again later from the committed position
            tracker.gen += 1
            tracker.pending.clear()
            ring.reader.rewind()
            ack.settle()
            self._stop.wait(float(self.config.refused_backoff))
            return True
        ack.settle()
        return False

    def _valid(self, channel: str, rs: RecordSet) -> RecordSet:
        """The records of ``rs`` that pass ring_checks; the others are
        skipped, counted and logged here, never let through to fail a batch
        or kill a thread downstream."""
        if rs.signal == "metrics":
            points, bad, errors = check_metrics(rs)
        else:
            points, (bad, errors) = None, (check_spans if rs.signal == "traces" else check_logs)(rs)
        n = int(bad.sum())
        if n:
            self._corrupt.add(n, channel=channel, record_type=rs.signal)
            log.warning("%s: skipped %d corrupt %s record(s) on channel %s: %s", self.id, n,
                        rs.signal, channel, "; ".join(sorted(set(errors))[:5]))
            rs = rs.select(~bad)
        if points is not None:
            rs.items = points
        return rs

    def _checked_definitions(self, channel: str, tracker: _Tracker) -> dict:
        """The ring's definitions, each decoded once when it first appears:
        a corrupt one is removed (records referring to it then count as
        missing a definition downstream) and counted."""
        defs = tracker.ring.definitions()
        meta = tracker.ring.meta
        if meta.errors > tracker.meta_errors:
            self._corrupt.add(meta.errors - tracker.meta_errors, channel=channel,
                              record_type="definitions")
            log.warning("%s: corrupt definitions file %s", self.id, meta.path)
            tracker.meta_errors = meta.errors
        if len(defs) > tracker.defs_checked:
            from otelplug import codec
            for key in list(defs)[tracker.defs_checked:]:
                try:
                    codec.decode_definition(defs[key])
                except ValueError as exc:
                    del defs[key]
                    self._corrupt.add(1, channel=channel, record_type="definitions")
                    log.warning("%s: skipped a corrupt definition (key %#x) in %s: %s",
                                self.id, key, meta.path, exc)
            tracker.defs_checked = len(defs)
        return defs

    def _apply_settled(self) -> None:
        touched = set()
        while True:
            try:
                tracker, gen, entry = self._settled.get_nowait()
            except queue.Empty:
                break
            if gen == tracker.gen:
                entry[1] = True
                touched.add(tracker)
        for t in touched:
            while t.pending and t.pending[0][1]:
                batch = t.pending.popleft()[0]
                try:
                    t.ring.commit(batch)
                except ValueError:
                    pass  # ring already reclaimed or rewound

    def _retire(self, _owner) -> None:
        for name, c in self.chan.items():
            n = self._retired_seen.get(name, 0)
            for acct in c.retired[n:]:
                self._lost.add(acct.lost_in_flight, channel=name)
                self._count_corrupt(name, acct.path, acct.corrupt_records, acct.corrupt_bytes)
                self._retired_dropped.add(acct.dropped, channel=name)
                self._trackers.pop(acct.path, None)
            self._retired_seen[name] = len(c.retired)
            for reason, total in list(c.stats.rejected.items()):
                seen = self._rejected_seen.get((name, reason), 0)
                if total > seen:
                    self._rejected.add(total - seen, channel=name, reason=reason)
                    self._rejected_seen[(name, reason)] = total

    def _count_corrupt(self, channel: str, path: str, records: int, nbytes: int) -> None:
        """Bring the corrupt-record and -byte counters up to a ring's own
        totals (read from its header at each scrape, and finally when the
        ring is reclaimed): each loss is counted once, while it happens."""
        with self._lock:
            seen_r, seen_b = self._corrupt_seen.get(path, (0, 0))
            self._corrupt.add(max(0, records - seen_r), channel=channel, record_type="unknown")
            self._corrupt_bytes.add(max(0, nbytes - seen_b), channel=channel)
            # kept after the ring is retired (a few bytes per ring): a scrape
            # racing the retirement then cannot count the same loss again
            self._corrupt_seen[path] = (max(records, seen_r), max(nbytes, seen_b))

    def _refresh_ring_metrics(self) -> None:
        for name, c in list(self.chan.items()):
            self._producers.set(len(c.rings), channel=name)
            for ring in list(c.rings.values()):
                try:
                    h = ring.header()
                except ValueError:
                    continue
                pid = h["pid"]
                self._count_corrupt(name, str(ring.path), h["corrupt_records"], h["corrupt_bytes"])
                self._ring_dropped.set(h["dropped_full"], channel=name, pid=pid, reason="full")
                self._ring_dropped.set(h["oversize"], channel=name, pid=pid, reason="oversize")
                self._ring_pending.set(h["write_pos"] - h["read_pos"], channel=name, pid=pid)


factory = Factory("shm", Kind.RECEIVER, ShmReceiverConfig, ShmReceiver)
