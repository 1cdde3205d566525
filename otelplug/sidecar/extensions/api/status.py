"""``GET /api/v1/status``: the running graph, its counters and health.

Counters come from the sidecar's self-metrics registry (the same numbers
``/metrics`` exposes), grouped by the component label each family
carries, so a new component's counters show up here without API code."""
from __future__ import annotations

import os
import time

from . import providers
from .sampler import by_label

# the label of a metric family that names the component -> its kind (the
# semconv families label the processor "component")
_COMPONENT_LABELS = {"receiver": "receivers", "exporter": "exporters", "processor": "processors",
                     "component": "processors", "connector": "connectors"}
_WORDS = ("spans", "metric_points", "log_records")


def _families_by_component(telemetry) -> dict[str, dict[str, float]]:
    """"kind::id" -> {family: total} (a receiver and an exporter may share an id)."""
    out: dict[str, dict[str, float]] = {}
    for fam in telemetry.families():
        for lab in fam.labelnames:
            if lab in _COMPONENT_LABELS:
                i = fam.labelnames.index(lab)
                short = fam.name[len(telemetry.PREFIX):]
                for key, v in fam.samples():
                    d = out.setdefault(f"{_COMPONENT_LABELS[lab]}::{key[i]}", {})
                    d[short] = d.get(short, 0.0) + v
                break
    return out


def pipelines(service) -> list[dict]:
    return [{"id": str(p.id), "receivers": [str(r) for r in p.receivers],
             "processors": [str(x) for x in p.processors],
             "exporters": [str(e) for e in p.exporters]}
            for p in service.config.pipelines.values()]


def components(service, telemetry) -> list[dict]:
    counters = _families_by_component(telemetry)
    running = getattr(service, "_running", set())
    seen, out = set(), []
    for c in service.components():
        label = service.label(c)
        if label in seen:
            continue        # one exporter id serves several signals: one row
        seen.add(label)
        kind, _, cid = label.partition("::")
        out.append({"id": label, "kind": kind[:-1], "name": cid,
                    "state": "running" if id(c) in running else "stopped",
                    "counters": counters.get(label, {})})
    return out


def rings(telemetry) -> list[dict]:
    rows: dict[tuple, dict] = {}
    for name, field in (("ring_pending_bytes", "pending_bytes"), ("ring_dropped_records", "dropped")):
        fam = telemetry.get(name)
        if fam is None:
            continue
        ln = fam.labelnames
        for key, v in fam.samples():
            lab = dict(zip(ln, key))
            row = rows.setdefault((lab["channel"], lab["pid"]),
                                  {"channel": lab["channel"], "pid": int(lab["pid"]), "pending_bytes": 0,
                                   "dropped_full": 0, "dropped_oversize": 0})
            if field == "dropped":
                row[f"dropped_{lab['reason']}"] = int(v)
            else:
                row[field] = int(v)
    channels = {}
    for name in ("ring_producers", "ring_lost_in_flight_records", "ring_corrupt_records",
                 "ring_retired_dropped_records"):
        for ch, v in by_label(telemetry, name, "channel").items():
            channels.setdefault(ch, {"channel": ch})[name[5:]] = int(v)
    return {"producers": sorted(rows.values(), key=lambda r: (r["channel"], r["pid"])),
            "channels": sorted(channels.values(), key=lambda r: r["channel"])}


def exporters(service, telemetry) -> list[dict]:
    out, seen = [], set()
    queue = by_label(telemetry, "exporter_queue_size", "exporter")
    capacity = by_label(telemetry, "exporter_queue_capacity", "exporter")
    retries = by_label(telemetry, "exporter_retries", "exporter")
    totals = {what: {} for what in ("sent", "send_failed", "enqueue_failed")}
    for what in totals:
        for w in _WORDS:
            for k, v in by_label(telemetry, f"exporter_{what}_{w}", "exporter").items():
                totals[what][k] = totals[what].get(k, 0) + v
    for (eid, _sig), exp in service.exporters.items():
        if eid in seen:
            continue
        seen.add(eid)
        out.append({"id": f"exporters::{eid}", "queue_size": int(queue.get(eid, 0)),
                    "queue_capacity": int(capacity.get(eid, 0)),
                    "sent": int(totals["sent"].get(eid, 0)),
                    "send_failed": int(totals["send_failed"].get(eid, 0)),
                    "enqueue_failed": int(totals["enqueue_failed"].get(eid, 0)),
                    "retries": int(retries.get(eid, 0)),
                    "last_error": getattr(exp, "last_error", None)})
    return out


def health(service, sampler, window: float, started: bool) -> dict:
    """Unhealthy when an exporter's sends failed throughout the window and
    none succeeded (the Collector's health_check stays green then:
    opentelemetry-collector-contrib #42231)."""
    if not started:
        return {"status": "starting", "problems": []}
    oldest, newest = sampler.window(window)
    problems = []
    if oldest is not None and newest is not oldest:
        for (eid, _sig), exp in service.exporters.items():
            failed = sum(newest[f"send_failed_{w}"].get(eid, 0) - oldest[f"send_failed_{w}"].get(eid, 0)
                         for w in _WORDS)
            sent = sum(newest[f"sent_{w}"].get(eid, 0) - oldest[f"sent_{w}"].get(eid, 0) for w in _WORDS)
            label = f"exporters::{eid}"
            if failed > 0 and sent == 0 and label not in {p["component"] for p in problems}:
                why = getattr(exp, "last_error", None) or "sends fail"
                problems.append({"component": label,
                                 "reason": f"{int(failed)} items failed to export in the last "
                                           f"{newest['t'] - oldest['t']:.0f}s and none were sent: {why}"})
    return {"status": "unhealthy" if problems else "healthy", "problems": problems}


def memory_limiters(service) -> list[dict]:
    return [{"id": label, "refusing": bool(p.refusing), "soft_limit_bytes": int(p.soft),
             "hard_limit_bytes": int(p.hard)}
            for label, p in providers.of_type(service, "memory_limiter")]


def semconv(service) -> list[dict]:
    out = []
    for label, p in providers.of_type(service, "semconv"):
        engine = getattr(p, "engine", None)
        if engine is not None:
            d = engine.stats_dict()
            out.append({"id": label, "total_entities_by_type": d.get("total_entities_by_type", {}),
                        "coverage_by_signal": d.get("coverage_by_signal", {})})
    return out


def build(service, telemetry, sampler, config, started_at: float, started: bool) -> dict:
    # gauges (ring fill, queue sizes) are at most half a sample interval old
    sampler.refresh(float(config.sample_interval) / 2)
    store = providers.find(service, "store")
    alerts = providers.find(service, "alerts")
    return {
        "time": time.time(),
        "uptime_seconds": round(time.time() - started_at, 3),
        "pid": os.getpid(),
        "health": health(service, sampler, float(config.health.failure_window), started),
        "pipelines": pipelines(service),
        "components": components(service, telemetry),
        "rings": rings(telemetry),
        "exporters": exporters(service, telemetry),
        "memory_limiters": memory_limiters(service),
        "store": store.api_store_size() if store is not None and hasattr(store, "api_store_size") else None,
        "alerts": alerts.api_alerts() if alerts is not None else None,
        "semconv": semconv(service),
        "capabilities": {name: providers.find(service, name) is not None for name in providers.CAPABILITIES},
        "process": {"cpu_seconds": _gauge(telemetry, "process_cpu_seconds"),
                    "rss_bytes": _gauge(telemetry, "process_memory_rss")},
    }


def _gauge(telemetry, name) -> float:
    fam = telemetry.get(name)
    return float(fam.value()) if fam is not None else 0.0
