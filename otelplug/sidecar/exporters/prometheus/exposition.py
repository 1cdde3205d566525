"""Rendering a snapshot in the Prometheus text format (0.0.4) or in
OpenMetrics 1.0 text, chosen by the scraper's Accept header."""
from __future__ import annotations

from .merge import HISTOGRAM
from .naming import format_float

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_INF_LE = 'le="+Inf"'


def wants_openmetrics(accept: str | None) -> bool:
    """True when the Accept header lists OpenMetrics with a non-zero q."""
    for part in (accept or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        if fields[0].lower() != "application/openmetrics-text":
            continue
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def _esc_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _esc_help(v: str, om: bool) -> str:
    v = v.replace("\\", "\\\\").replace("\n", "\\n")
    return v.replace('"', '\\"') if om else v


def _labels(pairs, extra: str = "") -> str:
    body = ",".join(f'{k}="{_esc_value(v)}"' for k, v in pairs)
    if extra:
        body = f"{body},{extra}" if body else extra
    return "{" + body + "}" if body else ""


def render(snapshot, openmetrics: bool) -> str:
    families, infos = snapshot
    out: list[str] = []
    add = out.append
    for fam, rows in families:
        name = fam.name
        ptype = fam.prom_type
        if ptype == "counter":
            base = name[:-6] if name.endswith("_total") else name
            sample = base + "_total" if openmetrics else name
            head = base if openmetrics else name
        else:
            head = sample = name
        add(f"# HELP {head} {_esc_help(fam.help, openmetrics)}")
        add(f"# TYPE {head} {ptype}")
        if fam.mode == HISTOGRAM:
            for labels, (bounds, v) in rows:
                count, total, buckets = v[0], v[1], v[2:]
                cum = 0.0
                for b, c in zip(bounds, buckets):
                    cum += c
                    le = 'le="%s"' % format_float(b)
                    add(f"{name}_bucket{_labels(labels, le)} {format_float(cum)}")
                add(f"{name}_bucket{_labels(labels, _INF_LE)} {format_float(count)}")
                if not openmetrics or total >= 0:   # OpenMetrics: no _sum with negative values
                    add(f"{name}_sum{_labels(labels)} {format_float(total)}")
                add(f"{name}_count{_labels(labels)} {format_float(count)}")
        else:
            for labels, v in rows:
                add(f"{sample}{_labels(labels)} {format_float(v)}")
    if infos:
        if openmetrics:
            add("# HELP target Target metadata")
            add("# TYPE target info")
        else:
            add("# HELP target_info Target metadata")
            add("# TYPE target_info gauge")
        for labels in infos:
            add(f"target_info{_labels(labels)} 1")
    if openmetrics:
        add("# EOF")
    return "\n".join(out) + "\n"
