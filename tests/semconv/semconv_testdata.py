"""Where the shared (not copied) test data lives: ``$OTELPLUG_SHARED_DIR``
or ``../shared`` beside the project root.  A missing folder skips locally
and fails on CI (tests/requirements.py)."""
from __future__ import annotations

from pathlib import Path

from tests.requirements import ROOT as PROJECT_ROOT  # noqa: F401 - re-exported
from tests.requirements import require_shared, shared_dir

SHARED = shared_dir()
UPSTREAM = SHARED / "semconv-upstream"
WEAVER_TESTS = SHARED / "weaver-tests"


def require(path: Path) -> Path:
    """``path`` (under SHARED) if it exists; skip locally / fail on CI if not."""
    return require_shared(*Path(path).relative_to(SHARED).parts)
