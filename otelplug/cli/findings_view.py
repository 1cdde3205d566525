"""The grouped view of semantic-convention findings, one line per group
(level, finding id, signal, attribute/metric) rather than one per item:
shared by ``otelplug findings`` (from a sidecar's API) and ``otelplug
semconv live-check`` (from sample files)."""
from __future__ import annotations

LEVEL_ORDER = {"violation": 0, "improvement": 1, "information": 2}


def subject(context: dict, signal_name: str | None) -> str:
    """What a finding is about: the attribute, metric or event name."""
    return (context.get("attribute_key") or context.get("metric_name") or context.get("event_name")
            or signal_name or "")


def group_findings(findings) -> list[dict]:
    """Rows like ``/api/v1/findings`` from live-check Finding objects."""
    rows: dict[tuple, dict] = {}
    for f in findings:
        subj = subject(f.context, f.signal_name)
        key = (f.level, f.id, f.signal_type or "", subj)
        row = rows.get(key)
        if row is None:
            row = rows[key] = {"level": f.level, "id": f.id, "signal": f.signal_type or "",
                               "attribute_or_metric": subj, "count": 0, "message": f.message,
                               "renamed_to": f.context.get("renamed_to")}
        row["count"] += 1
    return sort_rows(list(rows.values()))


def sort_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (LEVEL_ORDER.get(r["level"], 9), -r["count"], r["id"],
                                       r["attribute_or_metric"]))


def format_rows(rows: list[dict]) -> list[str]:
    if not rows:
        return ["no findings"]
    out = [f"{'LEVEL':<11} {'FINDING':<36} {'SIGNAL':<8} {'ATTRIBUTE/METRIC':<36} {'COUNT':>8}  NOTE"]
    for r in rows:
        notes = []
        if r.get("renamed_to"):
            notes.append(f"renamed to {r['renamed_to']}")
        if r.get("service"):
            notes.append(f"service {r['service']}")
        ex = r.get("example")
        if ex:
            notes.append(f"e.g. trace {ex['trace_id']} span {ex['span_id']}")
        elif r.get("message") and not notes:
            notes.append(r["message"])
        out.append(f"{r['level']:<11} {r['id']:<36} {r['signal'] or '-':<8} "
                   f"{r['attribute_or_metric'] or '-':<36} {r['count']:>8}  {'; '.join(notes)}".rstrip())
    groups, items = len(rows), sum(r["count"] for r in rows)
    out.append(f"{groups} finding group{'s' if groups != 1 else ''}, {items} item{'s' if items != 1 else ''}")
    return out
