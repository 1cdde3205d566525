"""Shared fixtures.

Every test gets its own shared-memory folder (under /dev/shm, so rings live
on a real tmpfs as in production) through ``$OTELPLUG_SHM_DIR``, inherited by
the processes it starts; it is removed afterwards.
"""
from __future__ import annotations

# Before any test creates a TracerProvider (why: otelplug/producer/__init__.py);
# seen as a deadlocked child in test_fork after the semconv processor tests.
import concurrent.futures.thread  # noqa: F401
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.requirements import shared_dir

ROOT = Path(__file__).resolve().parent.parent
# $OTELPLUG_SHARED_DIR or ../shared (tests/requirements.py)
SHARED = shared_dir()


@pytest.fixture(autouse=True)
def shm_dir(monkeypatch):
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    d = Path(tempfile.mkdtemp(prefix="otelplug-test-", dir=base))
    monkeypatch.setenv("OTELPLUG_SHM_DIR", str(d))
    monkeypatch.delenv("OTELPLUG_CHANNEL", raising=False)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def ring_impls():
    """Both ring implementations, for tests that must hold for each.  A
    missing Cython build is an error, not a skip: the README's test command
    builds it."""
    from otelplug.ring import impl
    return [pytest.param(impl.by_name("cython"), id="cyring"),
            pytest.param(impl.by_name("python"), id="pyring")]


@pytest.fixture
def cython_built():
    """The compiled codecs: skip locally / fail on CI when not built."""
    from tests.requirements import require_native
    for name in ("ring", "span_codec", "log_codec", "metric_codec", "definition_codec"):
        require_native(f"otelplug._ext.{name}")


@pytest.fixture(params=ring_impls())
def ring_impl(request):
    return request.param
