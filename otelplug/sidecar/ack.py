"""Delivery acknowledgements: when may a receiver let go of its data?

The shm receiver gives ring space back only once the data is safe: handed to
an exporter's persistent queue, acknowledged by the destination, or
deliberately dropped by a processor (and counted there).  Every batch
carries the acks of the source batches it came from; each holder settles
its share exactly once.  Fan-out to N consumers holds N shares; the batch
processor merges batches and settles all their acks when the merged batch
is done.
"""
from __future__ import annotations

import threading
from typing import Callable


class Ack:
    __slots__ = ("_pending", "_on_settled", "_lock", "failed")

    def __init__(self, on_settled: Callable[["Ack"], None] | None = None):
        self._pending = 1
        self._on_settled = on_settled
        self._lock = threading.Lock()
        self.failed = False   # some holder gave the data up (counted where it happened)

    def hold(self, n: int = 1) -> None:
        with self._lock:
            if self._pending <= 0:
                raise RuntimeError("ack already settled")
            self._pending += n

    def settle(self, ok: bool = True) -> None:
        with self._lock:
            if self._pending <= 0:
                raise RuntimeError("ack settled more times than it was held")
            if not ok:
                self.failed = True
            self._pending -= 1
            done = self._pending == 0
        if done and self._on_settled is not None:
            self._on_settled(self)

    @property
    def settled(self) -> bool:
        return self._pending == 0


def hold_all(acks, n: int = 1) -> None:
    for a in acks:
        a.hold(n)


def settle_all(acks, ok: bool = True) -> None:
    for a in acks:
        a.settle(ok)
