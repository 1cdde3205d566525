"""``GET /api/v1/findings``: semantic-convention findings grouped by id,
level, signal and attribute/metric (the semconv processors' finding
counters), with counts, first/last seen (from the API's sampler) and the
registry's ``renamed_to`` for deprecated names."""
from __future__ import annotations

from . import providers


def _renamed_to(engines: dict, component: str, name: str) -> str | None:
    engine = engines.get(component)
    reg = getattr(engine, "registry", None)
    if reg is None:
        return None
    for table in ("attributes", "metrics"):
        entry = getattr(reg, table, {}).get(name)
        dep = getattr(entry, "deprecated", None)
        if isinstance(dep, dict) and dep.get("renamed_to"):
            return dep["renamed_to"]
    return None


def groups(service, telemetry, sampler) -> list[dict]:
    fam = telemetry.get("semconv_findings")
    if fam is None:
        return []
    engines = {label.partition("::")[2]: getattr(p, "engine", None)
               for label, p in providers.of_type(service, "semconv")}
    examples = {}
    for eng in engines.values():
        examples.update(getattr(eng, "finding_examples", None) or {})
    out = []
    names = fam.labelnames
    for key, count in fam.samples():
        lab = dict(zip(names, key))
        seen = sampler.findings_seen.get(key) if sampler is not None else None
        ex = examples.get((lab["id"], lab["level"], lab["signal"], lab["attribute_or_metric"]))
        out.append({"id": lab["id"], "level": lab["level"], "signal": lab["signal"],
                    "attribute_or_metric": lab["attribute_or_metric"], "component": lab["component"],
                    "service": ex["service"] if ex else None,
                    "count": int(count), "key": key,
                    "first_seen": seen[0] if seen else None, "last_seen": seen[1] if seen else None,
                    "example": ex,
                    "renamed_to": _renamed_to(engines, lab["component"], lab["attribute_or_metric"])})
    out.sort(key=lambda g: (-g["count"], g["id"], g["attribute_or_metric"]))
    return out


def filtered(rows: list[dict], level=None, signal=None, finding_id=None) -> list[dict]:
    return [r for r in rows if (level is None or r["level"] == level)
            and (signal is None or r["signal"] == signal)
            and (finding_id is None or r["id"] == finding_id)]
