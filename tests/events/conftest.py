"""Fixtures for the generated event emitters: a module generated from the
project's registry into a temporary folder, importable by the test and by
the processes it starts."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# the ring read-back helper of the producer tests
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "producer"))


def generate(registry: str, output: Path, cwd: Path = PROJECT_ROOT) -> bytes:
    """Run the real CLI, as a user would."""
    done = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "semconv", "generate", "python", registry,
                           "-o", str(output)], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return output.read_bytes()


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
