"""debug: writes what passes to stderr (the Collector's debug exporter:
verbosity basic = one line per batch, normal = one line per item, detailed =
every field), with sampling_initial / sampling_thereafter."""
from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import Literal

from ..component import Factory, Kind
from ..helpers.exporter import Exporter
from ..signals import ITEM_WORD


@dataclass
class DebugConfig:
    """``verbosity``: basic: one line per batch; normal: one per item;
    detailed: every field.

    ``sampling_initial``: batches written each second before sampling starts.

    ``sampling_thereafter``: after those, one batch in this many is written.
    """
    verbosity: Literal["basic", "normal", "detailed"] = "basic"
    sampling_initial: int = 2
    sampling_thereafter: int = 1


class DebugExporter(Exporter):
    def __init__(self, settings, config: DebugConfig):
        super().__init__(settings, config)
        self.stream = sys.stderr
        self._window = 0      # the current second
        self._n = 0           # batches seen in it
        self._lock = threading.Lock()
        self.clock = time.monotonic    # replaceable in tests

    def _sampled(self) -> bool:
        """As the Collector's debug exporter: in each second the first
        ``sampling_initial`` batches, then every ``sampling_thereafter``-th."""
        c = self.config
        with self._lock:
            now = int(self.clock())
            if now != self._window:
                self._window, self._n = now, 0
            self._n += 1
            n = self._n
        if n <= c.sampling_initial:
            return True
        return c.sampling_thereafter > 0 and (n - c.sampling_initial) % c.sampling_thereafter == 0

    def send(self, records, timeout) -> None:
        if not self._sampled():
            return
        print(f"{self.id}: {records.signal}: {records.items} {ITEM_WORD[records.signal]}", file=self.stream)
        if self.config.verbosity != "basic":
            from otelplug.otlp import encode, jsonfmt
            detailed = self.config.verbosity == "detailed"
            for line in _describe(encode.request(records), detailed, jsonfmt):
                print(f"  {line}", file=self.stream)


def _describe(request, detailed: bool, jsonfmt):
    """normal: one line per item; detailed: every field as OTLP-JSON."""
    d = jsonfmt.to_dict(request)
    for outer, inner, leaf in (("resourceSpans", "scopeSpans", "spans"),
                               ("resourceLogs", "scopeLogs", "logRecords"),
                               ("resourceMetrics", "scopeMetrics", "metrics")):
        for r in d.get(outer, []):
            for sc in r.get(inner, []):
                for item in sc.get(leaf, []):
                    if detailed:
                        yield json.dumps(item, sort_keys=True)
                    else:
                        name = item.get("name") or str(item.get("body", {}).get("stringValue", ""))
                        yield f"{leaf[:-1]} {name!r} " + " ".join(
                            f"{k}={item[k]}" for k in ("traceId", "spanId", "severityText") if k in item)


factory = Factory("debug", Kind.EXPORTER, DebugConfig, DebugExporter, stability="development")
