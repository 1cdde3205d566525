"""Fixtures for the generated event emitters: a module generated from the
project's registry into a temporary folder, importable by the test and by
the processes it starts."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from events_testdata import generate


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    generate("semconv", folder / "contract_events.py")
    return folder


@pytest.fixture
def events_module(generated_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(generated_dir))
    sys.modules.pop("contract_events", None)
    return importlib.import_module("contract_events")
