"""Service-graph series as metric records (OTLP-shaped, one empty
resource, scope ``traces_service_graph``, cumulative), as the Collector
emits them."""
from __future__ import annotations

import numpy as np

from otelplug import codec

from ..spanmetrics import CUMULATIVE, Histogram, Sum, _HistPoint, _Metric, _NumberPoint
from .metrics import (DROPPED, REQUEST_CLIENT, REQUEST_FAILED, REQUEST_SERVER, REQUEST_TOTAL,
                      UNPAIRED, GraphSeries)

SCOPE_NAME = "traces_service_graph"


class _Scope:
    name, version, schema_url, attributes = SCOPE_NAME, None, None, {}


class _Resource:
    attributes, schema_url = {}, ""


def _side_labels(key):
    client, server, conn = key
    return {"client": client, "server": server, "connection_type": conn}


def series_records(series: GraphSeries, store, start_ns: int, now_ns: int):
    """A metrics RecordSet of every series, or None when there is none."""
    from ...data import RecordSet
    scope = codec.encode_scope(_Scope())
    resource = codec.encode_resource(_Resource())
    skey, rkey = codec.definition_key(scope), codec.definition_key(resource)
    parts, items = [], 0

    def counter(name, table, labels):
        nonlocal items
        if table:
            pts = [_NumberPoint(labels(k), start_ns, now_ns, int(v)) for k, v in table.items()]
            parts.append(codec.encode_metric(_Metric(name, "", "1", Sum(pts, CUMULATIVE)),
                                             rkey, skey))
            items += len(pts)

    def histogram(name, table):
        nonlocal items
        if table:
            bounds = tuple(series.bounds.tolist())
            pts = [_HistPoint(series.labels(k), start_ns, now_ns, h.count, h.sum,
                              tuple(int(c) for c in h.buckets), bounds, h.min, h.max)
                   for k, h in table.items()]
            parts.append(codec.encode_metric(_Metric(name, "", "s", Histogram(pts, CUMULATIVE)),
                                             rkey, skey))
            items += len(pts)

    counter(REQUEST_TOTAL, series.requests, series.labels)
    counter(REQUEST_FAILED, series.failed, series.labels)
    histogram(REQUEST_SERVER, series.server)
    histogram(REQUEST_CLIENT, series.client)
    counter(UNPAIRED, store.unpaired, _side_labels)
    counter(DROPPED, store.dropped, _side_labels)
    if not parts:
        return None
    lengths = np.array([len(p) for p in parts], dtype=np.uint32)
    offsets = np.zeros(len(parts), dtype=np.uint64)
    offsets[1:] = np.cumsum(lengths[:-1], dtype=np.uint64)
    return RecordSet("metrics", b"".join(parts), offsets, lengths,
                     {skey: scope, rkey: resource}, (), items)
