"""One self-contained HTML file per report: tables and horizontal bar
charts as inline SVG, no scripts, nothing loaded from elsewhere."""
from __future__ import annotations

import html
import json

_STYLE = ("body{font:14px system-ui,sans-serif;margin:2em;color:#1d2330}table{border-collapse:collapse;"
          "margin:.5em 0 1.5em}th,td{padding:2px 8px;border-bottom:1px solid #e4e6eb;text-align:left}"
          "td.n{text-align:right;font-variant-numeric:tabular-nums}svg text{font-size:11px}")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def bars(title: str, rows: list[tuple[str, float]], unit: str = "") -> str:
    """A horizontal bar chart: one bar per (label, value)."""
    rows = [(lbl, float(v)) for lbl, v in rows if v is not None][:25]
    if not rows:
        return ""
    vmax = max(v for _, v in rows) or 1.0
    h, label_w, w = 18, 260, 760
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bars" width="{w}" height="{h * len(rows) + 24}">',
             f'<text x="0" y="12" font-weight="600">{html.escape(title)}</text>']
    for i, (lbl, v) in enumerate(rows):
        y = 20 + i * h
        bw = max(1.0, v / vmax * (w - label_w - 80))
        parts.append(f'<text x="0" y="{y + 12}">{html.escape(lbl[:40])}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{bw:.1f}" height="{h - 5}" fill="#3f6fd8"/>'
                     f'<text x="{label_w + bw + 4:.1f}" y="{y + 12}">{_fmt(v)}{html.escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(
        f'<td class="{"n" if isinstance(r.get(c), (int, float)) else ""}">{html.escape(_fmt(r.get(c)))}</td>'
        for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(kind: str, report: dict) -> str:
    body = [f"<h1>otelplug {html.escape(kind)} report</h1>",
            f"<p>{html.escape(report['since_iso'])} to {html.escape(report['until_iso'])}"
            f"{' &middot; service ' + html.escape(report['service']) if report.get('service') else ''}</p>"]
    r = report["report"]
    if kind == "performance":
        ops = r["operations"]
        body.append(bars("p95 latency per operation (ms)",
                         [(f"{o['service']} {o['operation']}", o["p95_ms"]) for o in ops], " ms"))
        body.append(bars("throughput per operation (/s)",
                         [(f"{o['service']} {o['operation']}", o["throughput_per_second"]) for o in ops], "/s"))
        body.append("<h2>Operations</h2>" + table(ops, ["service", "operation", "count", "throughput_per_second",
                                                        "p50_ms", "p95_ms", "p99_ms", "error_rate"]))
        body.append("<h2>Top regressions (p95 against the previous period)</h2>"
                    + table(r["regressions"], ["service", "operation", "previous_p95_ms", "p95_ms", "change"]))
    elif kind == "usage":
        body.append(bars("items per service and signal",
                         [(f"{i['service']} {i['signal']}", i["items"]) for i in r["items"]]))
        body.append("<h2>Items</h2>" + table(r["items"], ["service", "signal", "items"]))
        if r.get("drops") is not None:
            body.append("<h2>Drops</h2>" + table([r["drops"]], list(r["drops"])))
        if r.get("sampling"):
            body.append("<h2>Sampling</h2>" + table(r["sampling"], ["processor", "offered", "kept", "rate"]))
    else:
        svcs = r["services"]
        body.append(bars("error budget used (1.0 = all of it)",
                         [(s["service"], s["error_budget_used"]) for s in svcs]))
        body.append(bars("semantic-convention compliance", [(s["service"], s["semconv_compliance"]) for s in svcs]))
        body.append(f"<h2>Services (SLO {r['slo']})</h2>" + table(svcs, ["service", "spans", "availability",
                                                                        "error_budget_used", "semconv_compliance"]))
        if r.get("alerts") is not None:
            body.append("<h2>Alerts</h2>" + table(r["alerts"], ["id", "name", "state", "time_to_acknowledge_s",
                                                               "time_to_resolve_s"]))
    data = html.escape(json.dumps(report, sort_keys=True))
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>otelplug {kind} report"
            f"</title><style>{_STYLE}</style></head><body>{''.join(body)}"
            f"<details><summary>JSON</summary><pre>{data}</pre></details></body></html>\n")
