"""Spans as the store returns them (rows in the Collector ClickHouse
exporter's column names) -> the columns the analysis and the graph read."""
from __future__ import annotations

import numpy as np

from .analysis import TraceSpans
from .edges import SideSpans

KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
         "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
STATUS = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _hex_id(text) -> int:
    return int(text, 16) if text else 0


def trace_spans(rows: list[dict]) -> TraceSpans:
    start = np.array([r["Timestamp"] for r in rows], np.int64)
    return TraceSpans.build(
        [_hex_id(r["SpanId"]) for r in rows], [_hex_id(r["ParentSpanId"]) for r in rows],
        start, start + np.array([r["Duration"] for r in rows], np.int64),
        [r["SpanName"] for r in rows], [r["ServiceName"] for r in rows],
        status_code=[STATUS.get(r["StatusCode"], 0) for r in rows],
        kind=[KINDS.get(r["SpanKind"], 0) for r in rows])


def _first(keys, *maps):
    for k in keys:
        for m in maps:
            v = (m or {}).get(k)
            if v not in (None, ""):
                return str(v)
    return None


def side_spans(rows: list[dict], database_attributes, peer_attributes) -> SideSpans:
    n = len(rows)
    kind = np.array([KINDS.get(r["SpanKind"], 0) for r in rows], np.uint8)
    attrs = [r.get("SpanAttributes") or {} for r in rows]
    res = [r.get("ResourceAttributes") or {} for r in rows]
    db = np.array([_first(database_attributes, a, ra) if k == 3 else None
                   for k, a, ra in zip(kind.tolist(), attrs, res)], dtype=object)
    peer = np.array([_first(peer_attributes, a) if k in (3, 4) else None
                     for k, a in zip(kind.tolist(), attrs)], dtype=object)
    tid = np.array([list(bytes.fromhex(r["TraceId"].rjust(32, "0"))) for r in rows],
                   np.uint8).reshape(n, 16)
    return SideSpans(tid, np.array([_hex_id(r["SpanId"]) for r in rows], np.uint64),
                     np.array([_hex_id(r["ParentSpanId"]) for r in rows], np.uint64), kind,
                     np.array([r["StatusCode"] == "STATUS_CODE_ERROR" for r in rows], bool),
                     np.array([r["Duration"] for r in rows], np.float64) / 1e9,
                     np.array([r["ServiceName"] or None for r in rows], dtype=object), db, peer)


_KIND_NAMES = {v: k for k, v in KINDS.items()}
_STATUS_NAMES = {v: k for k, v in STATUS.items()}


def _json_value(v: dict):
    """An OTLP-JSON AnyValue's scalar (arrays and maps as their JSON)."""
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return int(v["intValue"])
    return v


def rows_from_otlp_json(requests) -> list[dict]:
    """Spans of OTLP-JSON ExportTraceServiceRequest objects (the file
    exporter's lines) as store-shaped rows."""
    rows = []
    for req in requests:
        for rs in req.get("resourceSpans", []):
            res = {a["key"]: _json_value(a["value"])
                   for a in rs.get("resource", {}).get("attributes", [])}
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    start, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
                    rows.append({
                        "Timestamp": start, "TraceId": s["traceId"], "SpanId": s["spanId"],
                        "ParentSpanId": s.get("parentSpanId", ""), "SpanName": s["name"],
                        "SpanKind": _KIND_NAMES.get(int(s.get("kind", 0)), "SPAN_KIND_UNSPECIFIED"),
                        "ServiceName": str(res.get("service.name", "")),
                        "Duration": max(end - start, 0),
                        "StatusCode": _STATUS_NAMES.get(int(s.get("status", {}).get("code", 0)),
                                                        "STATUS_CODE_UNSET"),
                        "SpanAttributes": {a["key"]: _json_value(a["value"])
                                           for a in s.get("attributes", [])},
                        "ResourceAttributes": res})
    return rows
