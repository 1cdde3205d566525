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
