"""Service-graph pairing: both sides in one batch or across batches,
database and messaging edges, virtual nodes on expiry, store limits."""
from __future__ import annotations

import numpy as np

from otelplug.traces.edges import EdgeStore, SideSpans
from otelplug.sidecar.connectors.servicegraph.metrics import GraphSeries

SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = 2, 3, 4, 5, 1


def spans(*rows):
    """rows: (trace, span_id, parent_id, kind, service, seconds, failed, db, peer)."""
    tid = np.array([[t] * 16 for t, *_ in rows], np.uint8).reshape(len(rows), 16)
    col = list(zip(*rows))
    return SideSpans(tid, np.array(col[1], np.uint64), np.array(col[2], np.uint64),
                     np.array(col[3], np.uint8), np.array(col[6], bool),
                     np.array(col[5], np.float64), np.array(col[4], object),
                     np.array(col[7], object), np.array(col[8], object))


def edges(done):
    return sorted(zip(done.client, done.server, done.conn, done.failed, done.client_s,
                      done.server_s))


def test_client_and_server_in_one_batch_and_across_batches():
    store = EdgeStore(ttl=2.0, max_items=100)
    done = store.add(spans((1, 10, 0, SERVER, "web", 0.5, False, None, None),
                           (1, 11, 10, CLIENT, "web", 0.3, False, None, None),
                           (1, 12, 11, SERVER, "api", 0.2, True, None, None),
                           (1, 13, 10, INTERNAL, "web", 0.1, False, None, None),
                           (2, 21, 5, CLIENT, "api", 0.05, False, None, None)), now=0.0)
    assert edges(done) == [("web", "api", "", True, 0.3, 0.2)]
    assert len(store) == 2          # the root server span and the lone client
    done = store.add(spans((2, 22, 21, SERVER, "auth", 0.04, False, None, None)), now=1.0)
    assert edges(done) == [("api", "auth", "", False, 0.05, 0.04)]
    assert len(store) == 1


def test_database_and_messaging():
    store = EdgeStore(ttl=2.0, max_items=100)
    done = store.add(spans((1, 11, 10, CLIENT, "web", 0.01, False, "postgresql", None),
                           (1, 12, 10, PRODUCER, "web", 0.002, False, None, "kafka"),
                           (1, 13, 12, CONSUMER, "worker", 0.3, False, None, None)), now=0.0)
    assert edges(done) == [("web", "postgresql", "database", False, 0.01, 0.01),
                           ("web", "worker", "messaging_system", False, 0.002, 0.3)]
    assert len(store) == 0


def test_expiry_makes_virtual_nodes_or_counts_unpaired():
    store = EdgeStore(ttl=2.0, max_items=100)
    store.add(spans((1, 10, 0, SERVER, "web", 0.5, False, None, None),       # called by user
                    (1, 11, 10, CLIENT, "web", 0.3, True, None, "payments.example"),
                    (1, 12, 10, CLIENT, "web", 0.1, False, None, None),      # no peer known
                    (3, 31, 99, SERVER, "api", 0.2, False, None, None)),     # client unseen
              now=0.0)
    assert not len(store.expire(now=1.9))
    done = store.expire(now=2.0)
    assert edges(done) == [("user", "web", "virtual_node", False, 0.0, 0.5),
                           ("web", "payments.example", "virtual_node", True, 0.3, 0.0)]
    assert store.unpaired == {("web", "", ""): 1, ("", "api", ""): 1}
    assert store.expired_edges == 4 and len(store) == 0


def test_full_store_drops_and_counts():
    store = EdgeStore(ttl=2.0, max_items=2)
    store.add(spans(*[(1, 10 + i, 0, CLIENT, "web", 0.1, False, None, None) for i in range(5)]),
              now=0.0)
    assert len(store) == 2 and store.dropped == {("web", "", ""): 3}
    # a side whose partner is stored still pairs when the store is full
    done = store.add(spans((1, 5, 10, SERVER, "api", 0.1, False, None, None)), now=0.5)
    assert edges(done) == [("web", "api", "", False, 0.1, 0.1)]


def test_series_counts_and_buckets():
    store = EdgeStore(ttl=2.0, max_items=100)
    series = GraphSeries(bounds=(0.1, 1.0))
    for t, (secs, failed) in enumerate([(0.1, False), (0.5, True), (3.0, False)]):
        series.add(store.add(spans((t, 11, 10, CLIENT, "web", secs, failed, None, None),
                                   (t, 12, 11, SERVER, "api", secs, False, None, None)), now=0))
    ok = ("web", "api", "", False)
    bad = ("web", "api", "", True)
    assert series.requests == {ok: 2, bad: 1} and series.failed == {bad: 1}
    assert series.client[ok].buckets.tolist() == [1, 0, 1]   # 0.1 counts in le=0.1
    assert series.server[bad].buckets.tolist() == [0, 1, 0]
    assert abs(series.client[ok].sum - 3.1) < 1e-9
