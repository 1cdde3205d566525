"""The service graph of a set of stored spans: nodes, edges, call counts,
error rates and p95 latency, as a table, JSON or Graphviz DOT.

Edges are paired exactly as the servicegraph connector pairs them
(``edges.py``); at the end every side still waiting is expired, so
requests to uninstrumented peers show as virtual nodes and the rest are
counted unpaired.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .edges import Completed, EdgeStore
from .rows import side_spans

DATABASE_ATTRIBUTES = ("db.name", "db.system.name")
PEER_ATTRIBUTES = ("peer.service", "db.name", "db.system.name", "messaging.system",
                   "server.address", "net.peer.name", "rpc.service")


@dataclass
class Edge:
    client: str
    server: str
    connection_type: str
    calls: int
    errors: int
    p95_ms: float          # server-side latency where known, else client-side

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass
class Graph:
    edges: list[Edge] = field(default_factory=list)
    unpaired: int = 0

    @property
    def nodes(self) -> list[dict]:
        out: dict[str, dict] = {}
        for e in self.edges:
            out.setdefault(e.client, {"name": e.client, "calls_in": 0, "errors_in": 0,
                                      "calls_out": 0})
            n = out.setdefault(e.server, {"name": e.server, "calls_in": 0, "errors_in": 0,
                                          "calls_out": 0})
            n["calls_in"] += e.calls
            n["errors_in"] += e.errors
            out[e.client]["calls_out"] += e.calls
        return [out[k] for k in sorted(out)]

    def as_json(self) -> str:
        return json.dumps({"nodes": self.nodes,
                           "edges": [dict(e.__dict__, error_rate=round(e.error_rate, 6))
                                     for e in self.edges],
                           "unpaired_spans": self.unpaired}, separators=(",", ":"))

    def as_table(self) -> str:
        if not self.edges:
            return "(no requests between services)"
        head = ["client", "server", "type", "calls", "errors", "error %", "p95 ms"]
        rows = [[e.client, e.server, e.connection_type or "-", str(e.calls), str(e.errors),
                 f"{100 * e.error_rate:.1f}", f"{e.p95_ms:.3f}"] for e in self.edges]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
        lines = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
        if self.unpaired:
            lines.append(f"({self.unpaired} spans found no partner and name no peer)")
        return "\n".join(lines)

    def as_dot(self) -> str:
        q = json.dumps        # a JSON string is a valid DOT quoted id
        lines = ["digraph services {", "  rankdir=LR;"]
        for n in self.nodes:
            lines.append(f"  {q(n['name'])};")
        for e in self.edges:
            label = f"{e.calls} calls, {100 * e.error_rate:.1f}% err, p95 {e.p95_ms:.1f} ms"
            style = ", style=dashed" if e.connection_type == "virtual_node" else ""
            lines.append(f"  {q(e.client)} -> {q(e.server)} [label={q(label)}{style}];")
        lines.append("}")
        return "\n".join(lines)


def build_graph(done: Completed, unpaired: int) -> Graph:
    groups: dict[tuple, list] = {}
    for c, s, conn, failed, cs, ss in zip(done.client, done.server, done.conn, done.failed,
                                          done.client_s, done.server_s):
        groups.setdefault((c, s, conn), []).append((failed, ss if ss > 0 else cs))
    edges = []
    for (c, s, conn), items in sorted(groups.items()):
        secs = np.array([x for _, x in items])
        edges.append(Edge(c, s, conn, len(items), sum(1 for f, _ in items if f),
                          float(np.percentile(secs, 95)) * 1e3))
    return Graph(edges, unpaired)


def graph_from_rows(rows: list[dict], database_attributes=DATABASE_ATTRIBUTES,
                    peer_attributes=PEER_ATTRIBUTES) -> Graph:
    store = EdgeStore(ttl=0.0, max_items=len(rows) + 1)
    done = store.add(side_spans(rows, database_attributes, peer_attributes), now=0.0)
    done.extend(store.expire(now=1.0, virtual_nodes=bool(peer_attributes)))
    return build_graph(done, sum(store.unpaired.values()))
