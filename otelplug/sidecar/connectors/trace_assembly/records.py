"""Closed traces as log records, event ``otelplug.trace.analysis``: the
numbers as attributes (queryable as they are), the critical path and the
breakdowns as a JSON body."""
from __future__ import annotations

import json

from otelplug import codec
from otelplug.codec import model, views
from otelplug.codec.recordset import RecordSet

from ...rewrite import encode_log, encode_resource

EVENT = "otelplug.trace.analysis"
SCOPE = "otelplug.sidecar.trace_assembly"
_SEVERITY_INFO = 9


_RESOURCE = encode_resource(model.Resource({"service.name": "otelplug"}))
_SCOPE = codec.encode_scope(views.Scope(SCOPE))
_RKEY, _SKEY = codec.definition_key(_RESOURCE), codec.definition_key(_SCOPE)


def analysis_attributes(c) -> tuple[dict, str, int]:
    """(attributes, JSON body, timestamp ns) of one closed trace."""
    a = c.analysis
    summary = a.summary()
    attrs = {"otelplug.trace.span_count": summary["span_count"],
             "otelplug.trace.depth": summary["depth"],
             "otelplug.trace.error_count": summary["error_count"],
             "otelplug.trace.duration_ns": summary["duration_ns"],
             "otelplug.trace.close_reason": c.reason,
             "otelplug.trace.revision": c.revision,
             "otelplug.trace.late_spans": c.late_spans}
    if a.root >= 0:
        sp = a.spans
        attrs["otelplug.trace.root.name"] = sp.names[int(sp.name_id[a.root])]
        attrs["otelplug.trace.root.service"] = sp.services[int(sp.service_id[a.root])]
        ts = int(sp.start[a.root])
    else:
        ts = int(a.spans.start.min()) if len(a.spans) else 0
    for k, v in summary["anomalies"].items():
        if v:
            attrs[f"otelplug.trace.anomaly.{k}"] = v if isinstance(v, bool) else int(v)
    body = json.dumps({k: summary[k] for k in ("critical_path", "by_operation", "by_service")},
                      separators=(",", ":"))
    return attrs, body, ts


def analysis_records(closed):
    """A logs RecordSet with one record per closed trace."""
    parts = []
    for c in closed:
        attrs, body, ts = analysis_attributes(c)
        parts.append(encode_log(model.LogData(
            time_unix_nano=ts, observed_time_unix_nano=ts,
            trace_id=int.from_bytes(c.trace_id, "big"), severity_number=_SEVERITY_INFO,
            severity_text="INFO", event_name=EVENT, body=body, attributes=attrs,
            resource_key=_RKEY, scope_key=_SKEY)))
    return RecordSet.from_parts("logs", parts, {_RKEY: _RESOURCE, _SKEY: _SCOPE})
