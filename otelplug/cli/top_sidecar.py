"""``otelplug top --api URL``: the sidecar's pipelines, components and
exporters (from ``GET /api/v1/status``) under the ring table."""
from __future__ import annotations

from .api_client import ApiClientError, get_json


def fetch(url: str, token: str | None) -> dict:
    """The status document, or {"error": why} (top keeps showing the rings)."""
    try:
        return get_json(url, "/api/v1/status", token)
    except ApiClientError as exc:
        return {"error": str(exc)}


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def render(status: dict) -> str:
    if "error" in status:
        return f"sidecar: {status['error']}"
    h = status["health"]
    lines = [f"sidecar pid {status['pid']}  health {h['status']}  up {status['uptime_seconds']:.0f}s"]
    lines += [f"  ! {p['component']}: {p['reason']}" for p in h["problems"]]
    lines.append("")
    rows = [["PIPELINE", "RECEIVERS", "PROCESSORS", "EXPORTERS"]]
    rows += [[p["id"], ",".join(p["receivers"]), ",".join(p["processors"]) or "-", ",".join(p["exporters"])]
             for p in status["pipelines"]]
    lines += _table(rows)
    lines.append("")
    rows = [["COMPONENT", "STATE", "IN", "OUT", "DROPPED/FAILED"]]
    for c in status["components"]:
        k = c["counters"]
        items_in = sum(v for n, v in k.items() if n.startswith(("receiver_accepted_", "processor_incoming_")))
        items_out = sum(v for n, v in k.items() if n.startswith(("exporter_sent_", "processor_outgoing_")))
        bad = sum(v for n, v in k.items() if any(w in n for w in ("refused", "dropped", "failed")))
        rows.append([c["id"], c["state"], f"{items_in:.0f}", f"{items_out:.0f}", f"{bad:.0f}"])
    lines += _table(rows)
    lines.append("")
    rows = [["EXPORTER", "QUEUE", "SENT", "FAILED", "QUEUE_FULL", "RETRIES", "LAST_ERROR"]]
    for e in status["exporters"]:
        q = f"{e['queue_size']}/{e['queue_capacity']}" if e["queue_capacity"] else "-"
        rows.append([e["id"], q, str(e["sent"]), str(e["send_failed"]), str(e["enqueue_failed"]),
                     str(e["retries"]), (e["last_error"] or "")[:60]])
    lines += _table(rows)
    return "\n".join(lines)
