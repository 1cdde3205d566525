"""Service-graph series: the Collector's metric names and labels, kept as
running totals per (client, server, connection_type, failed).

Names as the Collector emits them over OTLP (``traces_service_graph_request_
server`` with unit ``s`` becomes ``..._request_server_seconds`` in
Prometheus, as the Collector's does).  Histogram buckets are upper-bound
inclusive (a duration equal to a bound counts in that bucket).
"""
from __future__ import annotations

import numpy as np

from otelplug.traces.edges import Completed

# the Collector's default bounds in seconds
DEFAULT_BOUNDS = (0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5,
                  10, 15)
REQUEST_TOTAL = "traces_service_graph_request_total"
REQUEST_FAILED = "traces_service_graph_request_failed_total"
REQUEST_SERVER = "traces_service_graph_request_server"
REQUEST_CLIENT = "traces_service_graph_request_client"
UNPAIRED = "traces_service_graph_unpaired_spans_total"
DROPPED = "traces_service_graph_dropped_spans_total"


class _Hist:
    __slots__ = ("count", "sum", "buckets", "min", "max")

    def __init__(self, n):
        self.count, self.sum, self.buckets = 0, 0.0, np.zeros(n, np.uint64)
        self.min, self.max = float("inf"), float("-inf")


class GraphSeries:
    def __init__(self, bounds=DEFAULT_BOUNDS):
        self.bounds = np.asarray(bounds, np.float64)
        self.requests: dict[tuple, int] = {}
        self.failed: dict[tuple, int] = {}
        self.server: dict[tuple, _Hist] = {}
        self.client: dict[tuple, _Hist] = {}

    def add(self, edges: Completed) -> None:
        if not len(edges):
            return
        nb = len(self.bounds) + 1
        cb = np.searchsorted(self.bounds, np.asarray(edges.client_s), side="left").tolist()
        sb = np.searchsorted(self.bounds, np.asarray(edges.server_s), side="left").tolist()
        for j, key in enumerate(zip(edges.client, edges.server, edges.conn, edges.failed)):
            self.requests[key] = self.requests.get(key, 0) + 1
            if key[3]:
                self.failed[key] = self.failed.get(key, 0) + 1
            for table, b, v in ((self.server, sb[j], edges.server_s[j]),
                                (self.client, cb[j], edges.client_s[j])):
                h = table.get(key)
                if h is None:
                    h = table[key] = _Hist(nb)
                h.count += 1
                h.sum += v
                h.min, h.max = min(h.min, v), max(h.max, v)
                h.buckets[b] += 1

    @staticmethod
    def labels(key: tuple) -> dict:
        client, server, conn, failed = key
        return {"client": client, "server": server, "connection_type": conn, "failed": failed}
