"""``GET /api/v1/public``: a sanitized view for people outside the team.

Built only from allow-listed aggregates per service (throughput, error
rate, p95 latency, availability) computed from counter windows; the
response is assembled from numbers and service names alone, so attribute
values, ids, hostnames, pids and endpoints cannot reach it.  The source
is a ``spanmetrics`` connector's series (the same calls/duration the
Collector's spanmetrics produces), sampled by the API's sampler."""
from __future__ import annotations

import numpy as np

from . import providers

PUBLIC_FIELDS = ("service", "throughput_per_second", "error_rate", "p95_ms", "availability")


def snapshot_services(service):
    """A sampler hook: per-service cumulative calls, errors and duration
    buckets (ms upper bounds) from every spanmetrics connector."""
    def add(snap: dict) -> None:
        per: dict[str, dict] = {}
        for _label, conn in providers.of_type(service, "spanmetrics"):
            bounds_ms = np.asarray(conn.bounds, dtype=np.float64) * (conn._ns_per_unit / 1e6)
            with conn._lock:
                series = list(conn.series.values())
                for s in series:
                    name = str(s.attributes.get("service.name", ""))
                    d = per.get(name)
                    if d is None:
                        d = per[name] = {"calls": 0.0, "errors": 0.0, "bounds_ms": bounds_ms,
                                         "buckets": np.zeros(len(s.buckets))}
                    d["calls"] += s.calls
                    if s.attributes.get("status.code") == "STATUS_CODE_ERROR":
                        d["errors"] += s.calls
                    if len(d["buckets"]) == len(s.buckets):
                        d["buckets"] = d["buckets"] + s.buckets
        snap["services"] = per
    return add


def _p95(buckets: np.ndarray, bounds_ms: np.ndarray) -> float | None:
    total = buckets.sum()
    if total <= 0:
        return None
    i = int(np.searchsorted(np.cumsum(buckets), 0.95 * total, side="left"))
    if i >= len(bounds_ms):          # the overflow bucket: report its lower edge
        return float(bounds_ms[-1]) if len(bounds_ms) else None
    return float(bounds_ms[i])


def service_rows(sampler, window: float) -> list[dict]:
    oldest, newest = sampler.window(window)
    if newest is None or "services" not in newest:
        return []
    span = max(newest["t"] - oldest["t"], 1e-9) if oldest is not newest else None
    rows = []
    for name, now in sorted(newest["services"].items()):
        before = (oldest or {}).get("services", {}).get(name) if span else None
        calls, errors, buckets = now["calls"], now["errors"], now["buckets"]
        if before is not None and before["calls"] <= calls:   # else the series restarted (delta)
            calls, errors = calls - before["calls"], errors - before["errors"]
            buckets = buckets - before["buckets"] if len(before["buckets"]) == len(buckets) else buckets
        rate = calls / span if span else 0.0
        err = errors / calls if calls > 0 else 0.0
        rows.append({"service": name, "throughput_per_second": round(rate, 3),
                     "error_rate": round(err, 6), "p95_ms": _p95(buckets, now["bounds_ms"]),
                     "availability": round(1.0 - err, 6)})
    return rows


def build(sampler, window: float) -> dict:
    rows = [{k: r[k] for k in PUBLIC_FIELDS} for r in service_rows(sampler, window)]
    return {"window_seconds": window, "services": rows}
