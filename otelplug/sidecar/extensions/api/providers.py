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
    return None


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
