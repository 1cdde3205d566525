"""debug: writes what passes to stderr (the Collector's debug exporter:
verbosity basic = one line per batch, normal = one line per item, detailed =
every field), with sampling_initial / sampling_thereafter."""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Literal

from ..component import Factory, Kind
from ..helpers.exporter import Exporter
from ..signals import ITEM_WORD


@dataclass
class DebugConfig:
    verbosity: Literal["basic", "normal", "detailed"] = "basic"
    sampling_initial: int = 2
    sampling_thereafter: int = 1


class DebugExporter(Exporter):
    def __init__(self, settings, config: DebugConfig):
        super().__init__(settings, config)
        self.stream = sys.stderr
        self._n = 0
        self._lock = threading.Lock()

    def send(self, records, timeout) -> None:
        with self._lock:
            self._n += 1
            n = self._n
        c = self.config
        if n > c.sampling_initial and (c.sampling_thereafter <= 1 and False or
                                       (n - c.sampling_initial) % max(1, c.sampling_thereafter)):
            return
        word = ITEM_WORD[records.signal]
        print(f"{self.id}: {records.signal}: {records.items} {word}", file=self.stream)
        if c.verbosity != "basic":
            from otelplug.codec import describe_records
            for line in describe_records(records, detailed=c.verbosity == "detailed"):
                print(f"  {line}", file=self.stream)


factory = Factory("debug", Kind.EXPORTER, DebugConfig, DebugExporter)
