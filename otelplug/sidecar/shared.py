"""Instances that several components share, owned by the service.

As the Collector's ``internal/sharedcomponent``: a connector is one
instance per (id, exporting signal), but some state must be one per id
across those instances (the ``semconv_router``'s checker: one shape cache
and one set of statistics for every signal it carries).  The service owns
one ``SharedInstances`` and hands it to every component in its
``CreateSettings``; a component built alone gets a fresh one, so nothing
leaks between services (a reload builds a new service and new instances).
"""
from __future__ import annotations

import threading
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class SharedInstances:
    def __init__(self):
        self._items: dict = {}
        self._lock = threading.Lock()

    def get_or_create(self, key: Hashable, create: Callable[[], T]) -> T:
        """The instance stored under ``key``, made with ``create()`` the
        first time (under a lock: two components never build two)."""
        with self._lock:
            if key not in self._items:
                self._items[key] = create()
            return self._items[key]

    def __len__(self) -> int:
        return len(self._items)
