"""Closed windows as OTLP gauges (one point per window and group; the
point's start and time are the window's start and end), and anomaly scores.

Metric names under the connector's namespace (``analytics`` by default),
``span`` or ``log`` by signal: ``.count``, ``.errors``, ``.error_rate``,
``.throughput`` (items per second of window); for spans also
``.duration.sum``, ``.duration.avg``, ``.duration.p50``, ``.p95``,
``.p99``, ``.max`` (seconds), and ``.anomaly.score`` (attribute
``analytics.metric``) for the scored metrics.  Every point carries the
group's dimensions and ``analytics.window``.
"""
from __future__ import annotations

import numpy as np

from otelplug import codec
from otelplug.analytics.rules import window_metric

from otelplug.codec.views import Gauge, Metric, NumberPoint, Scope

_SCOPE = codec.encode_scope(Scope("otelplug.analytics"))

SPAN_METRICS = (("count", "count", "{span}"), ("errors", "errors", "{span}"),
                ("error_rate", "error_rate", "1"), ("throughput", "throughput", "{span}/s"),
                ("duration.sum", "sum", "s"), ("duration.avg", "avg", "s"),
                ("duration.p50", "p50", "s"), ("duration.p95", "p95", "s"),
                ("duration.p99", "p99", "s"), ("duration.max", "max", "s"))
LOG_METRICS = (("count", "count", "{log}"), ("errors", "errors", "{log}"),
               ("error_rate", "error_rate", "1"), ("throughput", "throughput", "{log}/s"))
_RESOURCE = codec.encode_resource(type("R", (), {"attributes": {"service.name": "otelplug.analytics"},
                                                  "schema_url": None})())


def _number(v: float):
    return int(v) if float(v).is_integer() and abs(v) < 2 ** 53 else float(v)


def encode(namespace: str, signal: str, results, group_attrs, scores) -> tuple[list[bytes], int]:
    """Encoded metric records for ``results`` and the number of points."""
    rk = codec.definition_key(_RESOURCE)
    sk = codec.definition_key(_SCOPE)
    table = SPAN_METRICS if signal == "traces" else LOG_METRICS
    prefix = f"{namespace}.{'span' if signal == 'traces' else 'log'}."
    parts, items = [], 0
    for r in results:
        attrs = []
        for i in range(len(r)):
            a = dict(group_attrs(int(r.group[i])) or {})
            a["analytics.window"] = r.window
            attrs.append(a)
        start, end = r.start.tolist(), r.end.tolist()
        for suffix, metric, unit in table:
            vals = window_metric(r, metric)
            if unit == "s":
                vals = vals / 1e9
            pts = [NumberPoint(attrs[i], start[i], end[i], _number(v))
                   for i, v in enumerate(vals.tolist()) if not np.isnan(v)]
            if pts:
                parts.append(codec.encode_metric(Metric(prefix + suffix, "", unit, Gauge(pts)), rk, sk))
                items += len(pts)
    if scores:
        pts = [NumberPoint({**dict(labels), "analytics.window": w, "analytics.metric": m}, 0, now, s.score)
               for (w, m, labels), (s, now) in scores.items()]
        parts.append(codec.encode_metric(Metric(prefix + "anomaly.score", "", "1", Gauge(pts)), rk, sk))
        items += len(pts)
    return parts, items


def split_by_signal(consumer):
    """(metrics consumer, logs consumer or None) of what a connector feeds:
    a PipelineRouter names its pipelines, so window metrics go to metrics
    pipelines and alert events to logs pipelines; a plain consumer gets the
    metrics only."""
    pipelines = getattr(consumer, "pipelines", None)
    if not pipelines:
        return consumer, None
    by = {s: [c for pid, c in pipelines.items() if getattr(pid, "signal", "") == s] for s in ("metrics", "logs")}
    from ...consumer import FanOut
    return (FanOut(by["metrics"]) if by["metrics"] else None), (FanOut(by["logs"]) if by["logs"] else None)


def definitions() -> dict:
    return {codec.definition_key(_RESOURCE): _RESOURCE, codec.definition_key(_SCOPE): _SCOPE}


SEVERITY = {"firing": (13, "WARN"), "pending": (9, "INFO"), "resolved": (9, "INFO")}


def event_record(ev: dict) -> bytes:
    """An alert or anomaly event of the alerts extension as one log record
    (event name = the event, attributes = its fields, labels flattened as
    ``alert.label.<name>``)."""
    from opentelemetry._logs import LogRecord, SeverityNumber
    attrs = {}
    for k, v in ev.items():
        if k in ("event", "time"):
            continue
        if isinstance(v, dict):
            prefix = k[:-1] if k.endswith("labels") else k       # alert.labels -> alert.label.<name>
            attrs.update({f"{prefix}.{lk}": str(lv) for lk, lv in v.items()})
        elif v is not None:
            attrs[k] = v if isinstance(v, (str, bool, int, float)) else str(v)
    num, text = SEVERITY.get(ev.get("alert.to") or ev.get("alert.state"), (9, "INFO"))
    t = int(float(ev.get("time", 0)) * 1e9)
    rec = LogRecord(timestamp=t, observed_timestamp=t, severity_number=SeverityNumber(num), severity_text=text,
                    body=" ".join(str(x) for x in (ev.get("event"), ev.get("alert.name") or ev.get("metric"),
                                                    ev.get("alert.to") or "") if x),
                    attributes=attrs, event_name=ev.get("event"))
    return codec.encode_log(rec, 0, codec.definition_key(_RESOURCE), codec.definition_key(_SCOPE))
