"""memory_limiter: refuses data while what the sidecar holds is above its
soft limit (limit - spike), so it waits in the producers' rings (or with
OTLP clients, who retry) instead of piling up here.  The Collector's
configuration; a different measure.

The measure is the bytes of telemetry the pipeline holds (batch buffers,
sending queues, requests being read and decoded: ``memory.HELD``), not
the process's RSS.  RSS does not come back down after a burst (the
allocator keeps freed memory), so refusing on RSS latched: the sidecar
went on refusing long after the data was gone, when refusing could no
longer lower anything.  Held bytes drop as soon as data leaves, so the
limiter admits again once the pressure is gone.  Receivers reserve a
request's bytes against the same limit before reading it.

RSS still matters: at the hard limit the limiter collects garbage and asks
the allocator to give free memory back (``malloc_trim``), and large blocks
are made to come from (and go back to) the OS directly, so RSS follows
what is held.
"""
from __future__ import annotations

import gc
import threading
from dataclasses import dataclass

import psutil

from ..component import Factory, Kind
from ..config.decode import Duration
from ..consumer import Refused
from ..helpers.processor import Processor, log
from ..memory import HELD, release_free_memory, return_large_blocks_to_os


@dataclass
class MemoryLimiterConfig:
    """``check_interval``: how often the held bytes are measured.

    ``limit_mib``: the hard limit on held telemetry, in MiB.

    ``spike_limit_mib``: headroom below the hard limit: data is refused
    above ``limit - spike``.

    ``limit_percentage``: the hard limit as a percentage of total memory,
    instead of ``limit_mib``.

    ``spike_limit_percentage``: the headroom as a percentage of total memory.
    """
    check_interval: Duration = Duration(0)
    limit_mib: int = 0
    spike_limit_mib: int = 0              # default: 20% of limit_mib
    limit_percentage: int = 0
    spike_limit_percentage: int = 0

    def validate(self):
        errs = []
        if self.check_interval <= 0:
            errs.append("check_interval must be greater than zero")
        if self.limit_mib <= 0 and self.limit_percentage <= 0:
            errs.append("'limit_mib' or 'limit_percentage' must be greater than zero")
        if self.limit_mib > 0 and self.spike_limit_mib >= self.limit_mib:
            errs.append("'spike_limit_mib' must be smaller than 'limit_mib'")
        if not 0 <= self.limit_percentage <= 100 or not 0 <= self.spike_limit_percentage <= 100:
            errs.append("percentages must be between 0 and 100")
        if self.limit_percentage and self.spike_limit_percentage >= self.limit_percentage:
            errs.append("'spike_limit_percentage' must be smaller than 'limit_percentage'")
        return errs

    def limits_bytes(self) -> tuple[int, int]:
        """(hard limit, soft limit) in bytes."""
        if self.limit_mib > 0:
            hard = self.limit_mib << 20
            spike = (self.spike_limit_mib << 20) if self.spike_limit_mib else hard // 5
        else:
            total = psutil.virtual_memory().total
            hard = total * self.limit_percentage // 100
            spike = (total * self.spike_limit_percentage // 100) if self.spike_limit_percentage \
                else hard // 5
        return hard, hard - spike


class MemoryLimiter(Processor):
    def __init__(self, settings, config: MemoryLimiterConfig, next_consumer):
        super().__init__(settings, config, next_consumer)
        self.hard, self.soft = config.limits_bytes()
        self._proc = psutil.Process()
        self.refusing = False
        self._stop = threading.Event()
        self._refused = settings.telemetry.counter(
            "processor_refused_items", "Items refused by the memory limiter", ("processor", "otel_signal"))
        self._thread = threading.Thread(target=self._watch, name=f"{self.id}-check", daemon=True)
        self.rss = lambda: self._proc.memory_info().rss

    def start(self, host) -> None:
        return_large_blocks_to_os()
        HELD.set_limit(self, self.soft)
        self._check()
        self._thread.start()

    def _check(self) -> None:
        held = HELD.in_pipelines
        was, self.refusing = self.refusing, held >= self.soft
        if self.refusing != was:
            log.warning("%s: the pipeline holds %d MiB, %s the soft limit %d MiB; %s data", self.id,
                        held >> 20, "above" if self.refusing else "below", self.soft >> 20,
                        "refusing" if self.refusing else "accepting")
        if self.rss() >= self.hard:
            # memory nobody holds any more: hand it back rather than refuse
            gc.collect()
            release_free_memory()

    def _watch(self) -> None:
        while not self._stop.wait(float(self.config.check_interval)):
            self._check()

    def process(self, records):
        if self.refusing:
            self._refused.add(records.items, processor=self.id, otel_signal=records.signal)
            raise Refused(f"{self.id}: the pipeline holds more than the soft limit")
        return records

    def shutdown(self) -> None:
        self._stop.set()
        HELD.clear_limit(self)


factory = Factory("memory_limiter", Kind.PROCESSOR, MemoryLimiterConfig, MemoryLimiter)
