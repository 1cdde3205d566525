"""The demo's analytics and alert rule: the embedded default config plus an
``analytics`` connector on the spans and an ``alerts`` extension, so the
adapters' error spans raise a real alert that fires while they run and
resolves once they stop; the summary shows it."""
from __future__ import annotations

import time

import yaml

RULE = "DemoErrorSpans"
EXPORTER = "file/analytics"


def config(default_config: str) -> str:
    cfg = yaml.safe_load(default_config)
    cfg.setdefault("connectors", {})["analytics"] = {
        "windows": [{"name": "1s", "type": "tumbling", "size": "1s"}],
        "exclude_dimensions": ["status.code"],
        "flush_interval": "250ms",
        "alerts": "alerts",
        "rules": [{"name": RULE, "labels": {"severity": "warning"},
                   "annotations": {"summary": "error spans from the demo adapters"},
                   "count": {"match": {"signal": "traces", "status": "error"}, "within": "3s",
                             "op": ">", "value": 0}}]}
    cfg["exporters"][EXPORTER] = {"path": "${env:OTELPLUG_OUTPUT_DIR:-.}/otelplug-analytics.jsonl"}
    cfg["extensions"]["alerts"] = {"endpoint": "127.0.0.1:0", "evaluation_interval": "200ms"}
    svc = cfg["service"]
    svc["extensions"].append("alerts")
    svc["pipelines"]["traces"]["exporters"].append("analytics")
    svc["pipelines"]["metrics/analytics"] = {"receivers": ["analytics"], "exporters": [EXPORTER]}
    return yaml.safe_dump(cfg, sort_keys=False)


def wait_resolved(service, timeout: float) -> None:
    """After the adapters stop, give the rule time to see the errors stop."""
    ext = service.extension("alerts")
    deadline = time.monotonic() + timeout
    while ext is not None and time.monotonic() < deadline:
        alerts = ext.engine.list_alerts()
        if alerts and all(a["state"] == "resolved" for a in alerts):
            return
        time.sleep(0.1)


def summary(service, t0_wall: float) -> list[str]:
    ext = service.extension("alerts")
    if ext is None:
        return []
    lines = ["\nalerts (analytics connector rule, alerts extension):"]
    alerts = ext.engine.list_alerts()
    changes = [e for e in ext.events if e.get("event") == "alert.state_change"]
    for a in alerts:
        n_fired = sum(1 for e in changes if e["alert.id"] == a["id"] and e["alert.to"] == "firing")
        n_resolved = sum(1 for e in changes if e["alert.id"] == a["id"] and e["alert.to"] == "resolved")
        lines.append(f"  {a['rule']:<16} fired {n_fired} time(s), resolved {n_resolved} time(s); last:")
        fired = f"fired at {a['fired_at'] - t0_wall:4.1f}s" if a["fired_at"] else "never fired"
        resolved = f"resolved at {a['resolved_at'] - t0_wall:4.1f}s" if a["resolved_at"] else "still firing"
        lines.append(f"  {'':<16} {a['state']:<9} {fired}, {resolved}, last value {a['value']:g}")
    if not alerts:
        lines.append("  none raised")
    return lines
