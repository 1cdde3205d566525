"""Shared fixtures for the semconv tests.

Upstream registries and Weaver's test data live outside the repository, in
``$OTELPLUG_SHARED_DIR`` or ``<project root>/../shared/``; tests that need
them skip (with the reason) when that folder is absent, and fail on CI.  Nothing from there is copied into the repo.
"""
from __future__ import annotations

import functools
import os
import textwrap

import pytest

from semconv_testdata import UPSTREAM, require


@functools.lru_cache(maxsize=None)
def _resolved(path: str):
    from otelplug.semconv import resolve_registry
    return resolve_registry(path)


@pytest.fixture(scope="session")
def upstream():
    """``upstream("v1.43.0")`` -> resolved upstream registry (cached)."""
    def get(version: str):
        return _resolved(str(require(UPSTREAM / version)))
    return get


@pytest.fixture
def make_registry(tmp_path):
    """Write ``{relative path: yaml text}`` under a fresh folder; return it."""
    counter = {"n": 0}

    def make(files: dict[str, str], name: str | None = None) -> str:
        counter["n"] += 1
        root = tmp_path / (name or f"registry{counter['n']}")
        for rel, text in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return str(root)
    return make


@pytest.fixture
def resolve(make_registry):
    """Write a registry and resolve it in one step."""
    from otelplug.semconv import resolve_registry

    def run(files: dict[str, str]):
        return resolve_registry(make_registry(files))
    return run


@pytest.fixture
def in_dir():
    """Run a block with another current directory."""
    import contextlib

    @contextlib.contextmanager
    def change(path):
        old = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(old)
    return change
