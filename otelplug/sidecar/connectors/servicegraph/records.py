"""Service-graph series as metric records (OTLP-shaped, one empty
resource, scope ``traces_service_graph``, cumulative), as the Collector
emits them."""
from __future__ import annotations

from otelplug import codec
from otelplug.codec import views
from otelplug.codec.recordset import RecordSet

from ..spanmetrics import CUMULATIVE
from .metrics import (DROPPED, REQUEST_CLIENT, REQUEST_FAILED, REQUEST_SERVER, REQUEST_TOTAL,
                      UNPAIRED, GraphSeries)

SCOPE_NAME = "traces_service_graph"


def _side_labels(key):
    client, server, conn = key
    return {"client": client, "server": server, "connection_type": conn}


def series_records(series: GraphSeries, store, start_ns: int, now_ns: int):
    """A metrics RecordSet of every series, or None when there is none."""
    scope = codec.encode_scope(views.Scope(SCOPE_NAME))
    resource = codec.encode_resource(views.Resource(views.attributes()))
    skey, rkey = codec.definition_key(scope), codec.definition_key(resource)
    parts, items = [], 0

    def counter(name, table, labels):
        nonlocal items
        if table:
            pts = [views.NumberPoint(labels(k), start_ns, now_ns, int(v)) for k, v in table.items()]
            parts.append(codec.encode_metric(
                views.Metric(name, "", "1", views.Sum(pts, CUMULATIVE, True)), rkey, skey))
            items += len(pts)

    def histogram(name, table):
        nonlocal items
        if table:
            bounds = tuple(series.bounds.tolist())
            pts = [views.HistogramPoint(series.labels(k), start_ns, now_ns, h.count, h.sum,
                                        tuple(int(c) for c in h.buckets), bounds, h.min, h.max)
                   for k, h in table.items()]
            parts.append(codec.encode_metric(
                views.Metric(name, "", "s", views.Histogram(pts, CUMULATIVE)), rkey, skey))
            items += len(pts)

    counter(REQUEST_TOTAL, series.requests, series.labels)
    counter(REQUEST_FAILED, series.failed, series.labels)
    histogram(REQUEST_SERVER, series.server)
    histogram(REQUEST_CLIENT, series.client)
    counter(UNPAIRED, store.unpaired, _side_labels)
    counter(DROPPED, store.dropped, _side_labels)
    if not parts:
        return None
    return RecordSet.from_parts("metrics", parts, {skey: scope, rkey: resource}, (), items)
