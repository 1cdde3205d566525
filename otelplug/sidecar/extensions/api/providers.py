"""What the API shows besides the sidecar's own counters comes from
*providers*: any running component (extension, exporter, connector,
processor) that has the methods below.  The API looks them up in the
service when a request needs them, so a component built later (the alert
engine, trace assembly, the store) appears in the API by defining them:

alerts      ``api_alerts() -> list[dict]``,
            ``api_alert_action(alert_id, action, by, params) -> dict``
            (action: ``ack``, ``resolve``, ``silence``; KeyError for an
            unknown id, ValueError for bad params)
graph       ``api_service_graph() -> dict`` (``nodes``, ``edges``),
            ``api_critical_path(trace_id: str) -> dict | None``
store       ``api_query(kind, params) -> dict | list`` (kind: ``stats``,
            ``trace``, ``spans``, ``logs``; params already validated),
            ``api_store_size() -> dict``

The ``store`` exporter (otelplug/store) is used through ``_StoreAdapter``
(its store's ``stats/trace/spans/logs`` queries, parameterised SQL).

An alert extension that keeps an engine with the AlertControl methods
(``engine.list_alerts / ack / resolve / silence``, issue #11) is used
through ``_AlertControlAdapter`` without defining the ``api_*`` methods.
"""
from __future__ import annotations

CAPABILITIES = {
    "alerts": "api_alerts",
    "graph": "api_service_graph",
    "store": "api_query",
}


def find(service, capability: str):
    """The first running component offering ``capability``, or None."""
    if service is None:
        return None
    method = CAPABILITIES[capability]
    for c in service.components():
        if callable(getattr(c, method, None)):
            return c
        if capability == "alerts" and callable(getattr(getattr(c, "engine", None), "list_alerts", None)):
            return _AlertControlAdapter(c.engine)
        if capability == "store" and service.label(c).partition("::")[2].split("/")[0] == "store" \
                and callable(getattr(getattr(c, "shared", None), "get", None)):
            return _StoreAdapter(c.shared)
    return None


class _StoreAdapter:
    """The API's store calls over the store exporter's shared store; API
    times (unix seconds) become the store's nanoseconds."""

    def __init__(self, shared):
        self.shared = shared

    @staticmethod
    def _ns(t):
        return None if t is None else int(t * 1e9)

    def api_query(self, kind: str, p: dict):
        from otelplug.store import QueryError, StoreError

        try:
            store = self.shared.get()
            if kind == "trace":
                return store.trace(p["trace_id"])
            since, until = self._ns(p.get("since")), self._ns(p.get("until"))
            if kind == "stats":
                return store.stats(by=p["group_by"], bucket=p["bucket"], service=p.get("service"),
                                   since=since, until=until, limit=p["limit"])
            if kind == "spans":
                ms = p.get("min_duration_ms")
                return store.spans(service=p.get("service"), name=p.get("name"), status=p.get("status"),
                                   min_duration=None if ms is None else ms / 1000.0,
                                   since=since, until=until, limit=p["limit"])
            return store.logs(service=p.get("service"), event=p.get("event"),
                              min_severity=p.get("severity"), trace_id=p.get("trace_id"),
                              since=since, until=until, limit=p["limit"])
        except QueryError as exc:
            raise ValueError(str(exc)) from None
        except StoreError as exc:
            raise RuntimeError(f"store unavailable: {exc}") from None

    def api_store_size(self) -> dict:
        try:
            store = self.shared.get()
            return {"url": "(configured)", "bytes": int(store.size_bytes()),
                    "spans": store.count("otel_traces"), "log_records": store.count("otel_logs")}
        except Exception as exc:       # the status must still answer
            return {"error": str(exc)}


class _AlertControlAdapter:
    """The API's alert calls over an AlertControl engine."""

    def __init__(self, engine):
        self.engine = engine

    def api_alerts(self) -> list[dict]:
        return self.engine.list_alerts(include_resolved=True)

    def api_alert_action(self, alert_id: str, action: str, by: str, params: dict) -> dict:
        from ...config.decode import Duration

        note = str(params.get("comment", ""))
        if action == "ack":
            return self.engine.ack(alert_id, by, note)
        if action == "resolve":
            return self.engine.resolve(alert_id, by, note)
        alert = next((a for a in self.engine.list_alerts(include_resolved=True)
                      if a.get("id") == alert_id), None)
        if alert is None:
            raise KeyError(alert_id)
        try:
            seconds = float(Duration.parse(str(params.get("duration", "1h"))))
        except ValueError as exc:
            raise ValueError(f"duration: {exc}") from None
        if seconds <= 0:
            raise ValueError("duration: must be > 0")
        return self.engine.silence(dict(alert.get("labels", {})), seconds, by, note)


def of_type(service, type_name: str) -> list:
    """(label, component) of every component of ``type_name`` (``semconv``)."""
    if service is None:
        return []
    out = []
    for c in service.components():
        label = service.label(c)
        kind, _, cid = label.partition("::")
        if cid.split("/")[0] == type_name:
            out.append((label, c))
    return out
