"""Counter snapshots taken every ``sample_interval`` on a background
thread: rates for the status page, the export-failure window for health,
first/last seen for findings, and per-service windows for the public
view.  One snapshot is a dict of the few counter totals those need, so a
request never walks the metric families twice."""
from __future__ import annotations

import collections
import logging
import threading
import time

log = logging.getLogger("otelplug.sidecar")

_ITEM_WORDS = ("spans", "metric_points", "log_records")


def counter_total(telemetry, name: str, **match) -> float:
    fam = telemetry.get(name)
    if fam is None:
        return 0.0
    idx = {n: i for i, n in enumerate(fam.labelnames)}
    total = 0.0
    for key, v in fam.samples():
        if all(key[idx[k]] == str(val) for k, val in match.items() if k in idx):
            total += v
    return total


def by_label(telemetry, name: str, label: str) -> dict[str, float]:
    fam = telemetry.get(name)
    out: dict[str, float] = {}
    if fam is None or label not in fam.labelnames:
        return out
    i = fam.labelnames.index(label)
    for key, v in fam.samples():
        out[key[i]] = out.get(key[i], 0.0) + v
    return out


def ring_totals(telemetry) -> dict[str, list[float]]:
    """"channel/pid" -> [pending bytes, records dropped so far]."""
    out: dict[str, list[float]] = {}
    for name, i in (("ring_pending_bytes", 0), ("ring_dropped_records", 1)):
        fam = telemetry.get(name)
        if fam is None:
            continue
        ch, pid = fam.labelnames.index("channel"), fam.labelnames.index("pid")
        for key, v in fam.samples():
            out.setdefault(f"{key[ch]}/{key[pid]}", [0.0, 0.0])[i] += v
    return out


class Sampler:
    def __init__(self, telemetry, interval: float, keep: int = 600):
        self.telemetry = telemetry
        self.interval = interval
        self.samples: collections.deque = collections.deque(maxlen=keep)
        self.findings_seen: dict[tuple, list[float]] = {}   # label key -> [first, last, count]
        self.extra = []          # callables(snapshot dict) adding their own totals
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()
        self.refreshed_at = 0.0          # monotonic time of the last gauge refresh

    def refresh(self, max_age: float) -> None:
        """Refresh the gauges unless that was done in the last ``max_age`` s
        (a page polling /status every second then costs no extra refresh)."""
        if time.monotonic() - self.refreshed_at > max_age:
            self.telemetry.refresh()
            self.refreshed_at = time.monotonic()

    def start(self):
        self.sample()
        self._thread = threading.Thread(target=self._run, name="api-sampler", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:   # a broken provider must not stop sampling
                log.exception("api: sampling failed")

    def sample(self) -> dict:
        t = self.telemetry
        self.refresh(0.0)
        snap = {"t": time.time()}
        for w in _ITEM_WORDS:
            snap[f"accepted_{w}"] = counter_total(t, f"receiver_accepted_{w}")
            for what in ("sent", "send_failed", "enqueue_failed"):
                snap[f"{what}_{w}"] = by_label(t, f"exporter_{what}_{w}", "exporter")
        snap["queue"] = by_label(t, "exporter_queue_size", "exporter")
        snap["rings"] = ring_totals(t)
        for fn in self.extra:
            fn(snap)
        self._track_findings(snap["t"])
        with self._lock:
            self.samples.append(snap)
        return snap

    def _track_findings(self, now: float):
        fam = self.telemetry.get("semconv_findings")
        if fam is None:
            return
        for key, v in fam.samples():
            seen = self.findings_seen.get(key)
            if seen is None:
                self.findings_seen[key] = [now, now, v]
            elif v > seen[2]:
                seen[1], seen[2] = now, v

    def window(self, seconds: float) -> tuple[dict | None, dict | None]:
        """(oldest snapshot within ``seconds``, newest)."""
        with self._lock:
            if not self.samples:
                return None, None
            newest = self.samples[-1]
            oldest = newest
            for s in reversed(self.samples):
                if newest["t"] - s["t"] > seconds:
                    break
                oldest = s
            return oldest, newest

    def series(self, last: int = 120) -> list[dict]:
        with self._lock:
            return list(self.samples)[-last:]
