"""What a test needs from outside the project, and what happens without it.

One rule for every peer (a program such as prometheus, the Go-built
Collector, PostgreSQL or Chromium) and for the shared test data in
``../shared/``: outside CI a missing one skips the test with a reason that
says how to get it; on CI (``CI=true``) it fails the test, so that a green
run means everything really ran.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, hint: str = "") -> None:
    """Skip (locally) or fail (on CI) because ``what`` is not available."""
    message = f"{what} is not available" + (f": {hint}" if hint else "")
    if on_ci():
        pytest.fail(f"required on CI: {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def shared_dir() -> Path:
    """The shared test data: ``$OTELPLUG_SHARED_DIR`` or ``../shared``."""
    override = os.environ.get("OTELPLUG_SHARED_DIR")
    return Path(override) if override else ROOT.parent / "shared"


def require_shared(*parts: str) -> Path:
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        missing(f"shared test data {path}",
                "expected beside the project root or at $OTELPLUG_SHARED_DIR")
    return path


def require_executable(name: str, hint: str = "") -> str:
    """The path of program ``name`` on PATH."""
    found = shutil.which(name)
    if found is None:
        missing(f"the program {name!r}", hint)
    return found


def require_module(name: str, hint: str = ""):
    """Import and return module ``name`` (pytest.importorskip under the
    CI rule: a missing module fails on CI)."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"the Python module {name!r} ({exc})",
                hint or "pip install -e '.[test]' installs the test dependencies")


def require_native(module: str = "otelplug._ext.ring"):
    """A compiled extension module; the README's test command builds them."""
    return require_module(module, "build the extensions: python setup.py build_ext --inplace")
