"""Fixtures for the CLI tests (helpers live in ``helpers.py``)."""
from __future__ import annotations

import pytest

from .helpers import Writer


@pytest.fixture
def start_writer():
    writers: list[Writer] = []

    def start(channel: str, capacity: int = 1 << 16, count: int = 100, oversize: int = 0):
        w = Writer(channel, capacity, count, oversize)
        writers.append(w)
        return w

    yield start
    for w in writers:
        w.stop()
