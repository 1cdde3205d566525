"""Where the shared (not copied) test data lives, and how to skip without it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# OTELPLUG_SHARED_DIR lets a run point elsewhere (or nowhere, to see the skips)
SHARED = Path(os.environ.get("OTELPLUG_SHARED_DIR") or PROJECT_ROOT.parent / "shared")
UPSTREAM = SHARED / "semconv-upstream"
WEAVER_TESTS = SHARED / "weaver-tests"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test data not available: {path} (expected next to the project root)")
    return path
