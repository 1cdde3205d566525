"""Pairing spans into service-graph edges, after the Collector's
servicegraph connector (same pairing keys, expiry and virtual nodes).

An edge is one request between two nodes.  A client (or producer) span
keys its edge by (trace id, its span id); a server (or consumer) span by
(trace id, its parent span id), so both sides of one request meet under
one key.  A client span carrying a database name completes at once (the
database is not instrumented, the server side is the client's view).
Sides that find no partner wait in a store (at most ``max_items``, for at
most ``ttl``); when one expires it becomes a virtual-node edge where that
makes sense -- a server span with no parent was called by ``user``, a
client span naming its peer (``peer.service``, ``server.address``, a
messaging system ...) called that peer -- and is counted unpaired
otherwise.  A side that finds the store full is counted dropped.

Work per batch is numpy: the two sides of requests that arrive in the same
batch (the common case in a sidecar that sees every process of a host)
are joined with a sort over 24-byte keys; only the rest touch the store,
one dict operation each.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = 2, 3, 4, 5
UNSET, MESSAGING, DATABASE, VIRTUAL = "", "messaging_system", "database", "virtual_node"
_CONN_CODES = (UNSET, MESSAGING, DATABASE, VIRTUAL)
USER = "user"


@dataclass
class SideSpans:
    """The spans of one batch as columns (only kinds 2..5 matter)."""
    trace_id: np.ndarray      # (n, 16) uint8
    span_id: np.ndarray       # uint64
    parent_span_id: np.ndarray
    kind: np.ndarray          # uint8
    failed: np.ndarray        # bool
    seconds: np.ndarray       # float64 duration
    service: np.ndarray       # object: service.name, None when the resource has none
    db_name: np.ndarray       # object: database name of client spans, or None
    peer: np.ndarray          # object: first virtual-node peer attribute, or None


class _Pending:
    """One side of a request waiting for the other."""
    __slots__ = ("client", "server", "conn", "failed", "client_s", "server_s", "peer",
                 "root", "expires")

    def __init__(self, expires):
        self.client = self.server = self.peer = None
        self.conn = UNSET
        self.failed = False
        self.client_s = self.server_s = 0.0
        self.root = False
        self.expires = expires


@dataclass
class Completed:
    """Edges completed by one call, as parallel lists."""
    client: list
    server: list
    conn: list
    failed: list
    client_s: list
    server_s: list

    @classmethod
    def empty(cls):
        return cls([], [], [], [], [], [])

    def add(self, client, server, conn, failed, client_s, server_s):
        self.client.append(client); self.server.append(server); self.conn.append(conn)
        self.failed.append(failed); self.client_s.append(client_s); self.server_s.append(server_s)

    def extend(self, other: "Completed"):
        for name in ("client", "server", "conn", "failed", "client_s", "server_s"):
            getattr(self, name).extend(getattr(other, name))

    def __len__(self):
        return len(self.client)


def _keys(trace_id: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """24-byte (trace id, big-endian span id) keys as one void column."""
    raw = np.empty((len(ids), 24), np.uint8)
    raw[:, :16] = trace_id
    raw[:, 16:] = ids.astype(">u8").view(np.uint8).reshape(-1, 8)
    return raw.view("V24").ravel()


class EdgeStore:
    def __init__(self, ttl: float, max_items: int):
        self.ttl = ttl
        self.max_items = max_items
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()
        self.total_edges = 0          # self-metrics: as the Collector's
        self.expired_edges = 0
        self.dropped = {}             # (client, server, conn) -> spans dropped (store full)
        self.unpaired = {}            # (client, server, conn) -> spans never paired

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, spans: SideSpans, now: float) -> Completed:
        done = Completed.empty()
        kind = spans.kind
        has_service = np.array([s is not None for s in spans.service], bool) \
            if len(kind) else np.zeros(0, bool)
        is_client = np.isin(kind, (KIND_CLIENT, KIND_PRODUCER)) & has_service
        is_server = np.isin(kind, (KIND_SERVER, KIND_CONSUMER)) & has_service
        db = np.array([d is not None for d in spans.db_name], bool) if len(kind) else is_client
        db_client = is_client & db & (kind == KIND_CLIENT)
        for i in np.flatnonzero(db_client).tolist():
            done.add(spans.service[i], spans.db_name[i], DATABASE, bool(spans.failed[i]),
                     float(spans.seconds[i]), float(spans.seconds[i]))
        self.total_edges += int(np.count_nonzero(db_client))
        ci = np.flatnonzero(is_client & ~db_client)
        si = np.flatnonzero(is_server)
        ckeys = _keys(spans.trace_id[ci], spans.span_id[ci])
        skeys = _keys(spans.trace_id[si], spans.parent_span_id[si])
        _, cpos, spos = np.intersect1d(ckeys, skeys, assume_unique=False, return_indices=True)
        for c, s in zip(ci[cpos].tolist(), si[spos].tolist()):
            conn = MESSAGING if kind[c] == KIND_PRODUCER or kind[s] == KIND_CONSUMER else UNSET
            done.add(spans.service[c], spans.service[s], conn,
                     bool(spans.failed[c] or spans.failed[s]), float(spans.seconds[c]),
                     float(spans.seconds[s]))
        self.total_edges += len(cpos)
        c_rest = np.setdiff1d(np.arange(len(ci)), cpos)
        s_rest = np.setdiff1d(np.arange(len(si)), spos)
        for j in c_rest.tolist():
            self._upsert(ckeys[j].tobytes(), ci[j], spans, True, now, done)
        for j in s_rest.tolist():
            self._upsert(skeys[j].tobytes(), si[j], spans, False, now, done)
        return done

    def _upsert(self, key: bytes, i: int, spans: SideSpans, client: bool, now: float,
                done: Completed) -> None:
        e = self._pending.get(key)
        if e is None:
            e = _Pending(now + self.ttl)
            if len(self._pending) >= self.max_items:
                side = (spans.service[i], "", UNSET) if client else ("", spans.service[i], UNSET)
                self.dropped[side] = self.dropped.get(side, 0) + 1
                return
            self._pending[key] = e
            self.total_edges += 1
        k = int(spans.kind[i])
        if k in (KIND_PRODUCER, KIND_CONSUMER):
            e.conn = MESSAGING
        e.failed = e.failed or bool(spans.failed[i])
        if client:
            e.client, e.client_s, e.peer = spans.service[i], float(spans.seconds[i]), spans.peer[i]
        else:
            e.server, e.server_s = spans.service[i], float(spans.seconds[i])
            e.root = int(spans.parent_span_id[i]) == 0
        if e.client is not None and e.server is not None:
            del self._pending[key]
            done.add(e.client, e.server, e.conn, e.failed, e.client_s, e.server_s)

    def expire(self, now: float, virtual_nodes: bool = True) -> Completed:
        """Edges whose wait is over: virtual-node edges where a side can be
        named, the rest counted unpaired."""
        done = Completed.empty()
        while self._pending:
            key, e = next(iter(self._pending.items()))
            if e.expires > now:
                break
            del self._pending[key]
            self.expired_edges += 1
            if virtual_nodes and e.client is None and e.root:
                # as the Collector: the missing side's latency is 0
                done.add(USER, e.server, VIRTUAL, e.failed, 0.0, e.server_s)
            elif virtual_nodes and e.server is None and e.peer:
                done.add(e.client, e.peer, VIRTUAL, e.failed, e.client_s, 0.0)
            else:
                side = (e.client or "", e.server or "", e.conn)
                self.unpaired[side] = self.unpaired.get(side, 0) + 1
        return done
