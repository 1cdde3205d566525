"""The three reports as plain dicts (JSON-ready), computed with numpy
over the span columns of one range and, for regressions, the range of
the same length just before it."""
from __future__ import annotations

import numpy as np

from .source import Spans, Telemetry

KINDS = ("performance", "usage", "health")


def _in_range(t: np.ndarray, since: float, until: float) -> np.ndarray:
    return (t >= int(since * 1e9)) & (t < int(until * 1e9))


def _ops(spans: Spans, seconds: float) -> dict[tuple, dict]:
    out = {}
    if not len(spans):
        return out
    keys = np.array([f"{s}\x00{n}" for s, n in zip(spans.service, spans.name)], dtype=object)
    uniq, inv = np.unique(keys, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
    for i, k in enumerate(uniq):
        idx = order[bounds[i]:bounds[i + 1]]
        d = spans.duration_ms[idx]
        p50, p95, p99 = np.percentile(d, [50, 95, 99])
        svc, _, name = k.partition("\x00")
        out[(svc, name)] = {"service": svc, "operation": name, "count": int(len(idx)),
                            "throughput_per_second": len(idx) / seconds,
                            "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
                            "error_rate": float(spans.error[idx].mean())}
    return out


def performance(data: Telemetry, since: float, until: float, service: str | None = None) -> dict:
    seconds = max(until - since, 1e-9)
    sp = data.spans if service is None else data.spans.select(data.spans.service == service)
    now = _ops(sp.select(_in_range(sp.start_ns, since, until)), seconds)
    before = _ops(sp.select(_in_range(sp.start_ns, since - seconds, since)), seconds)
    regressions = []
    for key, row in now.items():
        prev = before.get(key)
        if prev and prev["p95_ms"] > 0 and row["p95_ms"] > prev["p95_ms"]:
            regressions.append({"service": row["service"], "operation": row["operation"],
                                "p95_ms": row["p95_ms"], "previous_p95_ms": prev["p95_ms"],
                                "change": row["p95_ms"] / prev["p95_ms"] - 1})
    regressions.sort(key=lambda r: -r["change"])
    return {"operations": sorted(now.values(), key=lambda r: (-r["count"], r["service"], r["operation"])),
            "regressions": regressions[:10]}


def usage(data: Telemetry, since: float, until: float, service: str | None = None,
          status: dict | None = None) -> dict:
    rows: dict[tuple, int] = {}
    sp = data.spans
    m = _in_range(sp.start_ns, since, until)
    for svc, n in zip(*np.unique(sp.service[m].astype(str), return_counts=True)) if m.any() else ():
        rows[(str(svc), "traces")] = int(n)
    for (svc, sig), times in data.items.items():
        n = int(_in_range(times, since, until).sum())
        if n:
            rows[(svc, sig)] = n
    items = [{"service": s, "signal": sig, "items": n} for (s, sig), n in sorted(rows.items())
             if service is None or s == service]
    out = {"items": items, "drops": None, "sampling": None}
    if status is not None:
        out["drops"] = {
            "ring_dropped": sum(r["dropped_full"] + r["dropped_oversize"] for r in status["rings"]["producers"]),
            "ring_lost_in_flight": sum(c.get("lost_in_flight_records", 0) for c in status["rings"]["channels"]),
            "exporter_send_failed": sum(e["send_failed"] for e in status["exporters"]),
            "exporter_enqueue_failed": sum(e["enqueue_failed"] for e in status["exporters"])}
        out["sampling"] = _sampling(status)
    return out


def _sampling(status: dict) -> list[dict]:
    """Kept/offered per sampling processor, from their counters."""
    out = []
    for c in status["components"]:
        if c["kind"] != "processor" or "sampl" not in c["name"]:
            continue
        inc, outc = c["counters"].get("processor_incoming_items", 0), c["counters"].get("processor_outgoing_items", 0)
        out.append({"processor": c["id"], "offered": int(inc), "kept": int(outc),
                    "rate": outc / inc if inc else None})
    return out


def health(data: Telemetry, since: float, until: float, service: str | None = None, slo: float = 0.999,
           alerts: list | None = None) -> dict:
    sp = data.spans.select(_in_range(data.spans.start_ns, since, until))
    services = []
    for svc in sorted(set(sp.service.tolist())):
        if service is not None and svc != service:
            continue
        m = sp.service == svc
        n = int(m.sum())
        err = float(sp.error[m].mean()) if n else 0.0
        allowed = 1.0 - slo
        services.append({"service": svc, "spans": n, "availability": 1.0 - err,
                         "error_budget_used": err / allowed if allowed > 0 else None,
                         "semconv_compliance": 1.0 - float(sp.violation[m].mean()) if n else None})
    return {"slo": slo, "services": services, "alerts": _alert_times(alerts, since, until)}


def _alert_times(alerts, since, until):
    """Time to acknowledge and to resolve per alert (when the alert list
    came from a running sidecar's API)."""
    if alerts is None:
        return None
    import datetime as dt

    def ts(v):
        if v in (None, ""):
            return None
        if isinstance(v, (int, float)):
            return float(v)
        try:
            return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None

    out = []
    for a in alerts:      # the alert engine's view (otelplug/analytics/alerts.py: Alert)
        start = ts(a.get("fired_at") or a.get("active_since"))
        if start is None or not since <= start < until:
            continue
        acked, resolved = ts((a.get("ack") or {}).get("at")), ts(a.get("resolved_at"))
        out.append({"id": a.get("id"), "name": a.get("rule"), "state": a.get("state"),
                    "time_to_acknowledge_s": acked - start if acked else None,
                    "time_to_resolve_s": resolved - start if resolved else None})
    return out
