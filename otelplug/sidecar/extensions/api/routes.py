"""The API's endpoints: one table of (method, path, scope, parameters,
handler) that the web app and the OpenAPI document are both built from."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from . import findings, providers, public
from .params import MAX_LIMIT, P

TRACE_ID = r"[0-9a-fA-F]{32}"
_GROUP = "(service|name|kind|status|scope)"
LIMIT = P("limit", "integer", minimum=1, maximum=MAX_LIMIT, default=100,
          description=f"at most this many rows (values above {MAX_LIMIT} are capped)")
SINCE = P("since", "time", description="start of the range (default: an hour ago)")
UNTIL = P("until", "time", description="end of the range (default: now)")
SERVICE = P("service", pattern=r"[\w.\-/:]{1,128}", description="service.name")


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Route:
    method: str
    path: str
    scope: str
    handler: Callable
    summary: str
    params: list = field(default_factory=list)
    body: dict | None = None          # JSON schema of an optional request body


def _store(ctx):
    s = providers.find(ctx.service, "store")
    if s is None:
        raise HttpError(404, "no telemetry store in this sidecar: add the store exporter to a pipeline")
    return s


def _range(p: dict) -> dict:
    now = time.time()
    out = dict(p)
    out["until"] = p.get("until") if p.get("until") is not None else now
    out["since"] = p.get("since") if p.get("since") is not None else out["until"] - 3600
    return out


def get_status(ctx, p, body):
    return ctx.status()


def get_public(ctx, p, body):
    return public.build(ctx.sampler, p["window"])


def _query(ctx, kind, p):
    """A store query; its refusal of a parameter is a 400, an unreachable store a 503."""
    store = _store(ctx)
    try:
        return store.api_query(kind, p)
    except ValueError as exc:
        raise HttpError(400, str(exc)) from None
    except RuntimeError as exc:
        raise HttpError(503, str(exc)) from None


def get_history(ctx, p, body):
    return {"series": _query(ctx, "stats", _range(p))}


def get_trace(ctx, p, body):
    if int(p["trace_id"], 16) == 0:        # not a valid id: no trace has it
        raise HttpError(404, f"trace {p['trace_id']} not found")
    spans = _query(ctx, "trace", {"trace_id": p["trace_id"].lower()})
    if not spans:
        raise HttpError(404, f"trace {p['trace_id']} not found")
    out = {"trace_id": p["trace_id"].lower(), "spans": spans}
    graph = providers.find(ctx.service, "graph")
    if graph is not None and hasattr(graph, "api_critical_path"):
        out["critical_path"] = graph.api_critical_path(p["trace_id"].lower())
    return out


def get_spans(ctx, p, body):
    return {"spans": _query(ctx, "spans", _range(p))}


def get_logs(ctx, p, body):
    return {"logs": _query(ctx, "logs", _range(p))}


def get_findings(ctx, p, body):
    rows = findings.filtered(findings.groups(ctx.service, ctx.telemetry, ctx.sampler),
                             p["level"], p["signal"], p["id"])
    shown = [{k: v for k, v in r.items() if k != "key"} for r in rows[:p["limit"]]]
    return {"findings": shown, "total_groups": len(rows)}


def get_alerts(ctx, p, body):
    a = providers.find(ctx.service, "alerts")
    if a is None:
        raise HttpError(404, "no alert engine in this sidecar")
    return {"alerts": a.api_alerts()}


def post_alert(ctx, p, body):
    a = providers.find(ctx.service, "alerts")
    if a is None:
        raise HttpError(404, "no alert engine in this sidecar")
    try:
        return a.api_alert_action(p["alert_id"], p["action"], ctx.principal.name, body or {})
    except KeyError:
        raise HttpError(404, f"alert {p['alert_id']!r} not found") from None
    except ValueError as exc:
        raise HttpError(400, str(exc)) from None


def get_graph(ctx, p, body):
    g = providers.find(ctx.service, "graph")
    if g is None:
        raise HttpError(404, "no trace assembly (service graph) in this sidecar")
    return g.api_service_graph()


def get_series(ctx, p, body):
    """Recent samples for the status page's charts (rates per interval)."""
    return {"samples": ctx.chart_samples(p["last"])}


def post_collect(ctx, p, body):
    flushed = []
    for c in ctx.service.components() if ctx.service is not None else []:
        fn = getattr(c, "flush_now", None)
        if callable(fn):
            fn()
            flushed.append(ctx.service.label(c))
    ctx.sampler.sample()
    return {"flushed": flushed}


ROUTES = [
    Route("GET", "/api/v1/status", "read", get_status,
          "Pipelines, components, rings, exporters, memory limiters, store, alerts, semconv, health"),
    Route("GET", "/api/v1/public", "public", get_public,
          "Per service: throughput, error rate, p95, availability (sanitized)",
          [P("window", "number", minimum=1, maximum=3600, default=60.0, description="seconds")]),
    Route("GET", "/api/v1/history", "read", get_history,
          "Time series from the store (the groups and buckets of otelplug query stats)",
          [SINCE, UNTIL, SERVICE, P("bucket", "enum", enum=("1m", "1h", "1d", "1w", "1mo"), default="1h"),
           P("group_by", pattern=rf"{_GROUP}(,{_GROUP}){{0,4}}", default="service,name",
             description="comma list of service, name, kind, status, scope"),
           P("limit", "integer", minimum=1, maximum=10000, default=1000)]),
    Route("GET", "/api/v1/traces/{trace_id}", "read", get_trace, "One trace's spans (and critical path)",
          [P("trace_id", pattern=TRACE_ID, where="path", required=True)]),
    Route("GET", "/api/v1/spans", "read", get_spans, "Spans from the store",
          [SINCE, UNTIL, SERVICE, P("name", pattern=r"[^\x00]{1,256}"),
           P("status", "enum", enum=("ok", "error", "unset")),
           P("min_duration_ms", "number", minimum=0, maximum=1e9), LIMIT]),
    Route("GET", "/api/v1/logs", "read", get_logs, "Log records from the store",
          [SINCE, UNTIL, SERVICE, P("severity", "enum", enum=("trace", "debug", "info", "warn", "error", "fatal"),
                                    description="at least this severity"),
           P("event", pattern=r"[\w.\-/:]{1,128}"), P("trace_id", pattern=TRACE_ID), LIMIT]),
    Route("GET", "/api/v1/findings", "read", get_findings, "Semantic-convention findings, grouped",
          [P("level", "enum", enum=("violation", "improvement", "information")),
           P("signal", "enum", enum=("span", "log", "metric", "resource", "event")),
           P("id", pattern=r"[a-z_]{1,64}"), LIMIT]),
    Route("GET", "/api/v1/alerts", "read", get_alerts, "Alerts (when an alert engine runs)"),
    Route("POST", "/api/v1/alerts/{alert_id}/{action}", "admin", post_alert,
          "Acknowledge, resolve or silence an alert",
          [P("alert_id", pattern=r"[\w.\-:]{1,128}", where="path", required=True),
           P("action", "enum", enum=("ack", "resolve", "silence"), where="path", required=True)],
          body={"type": "object", "properties": {"duration": {"type": "string", "maxLength": 16},
                                                 "comment": {"type": "string", "maxLength": 512}}}),
    Route("GET", "/api/v1/graph", "read", get_graph, "Service graph (when trace assembly runs)"),
    Route("GET", "/api/v1/series", "read", get_series, "Recent samples for the status page's charts",
          [P("last", "integer", minimum=1, maximum=600, default=120)]),
    Route("POST", "/api/v1/collect", "admin", post_collect, "Flush everything in flight now"),
]
