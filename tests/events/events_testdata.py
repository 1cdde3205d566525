"""Generating the emitter module in tests, as a user would (the real CLI)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# the ring read-back helper of the producer tests
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "producer"))


def generate(registry: str, output: Path, cwd: Path = PROJECT_ROOT) -> bytes:
    """Run the real CLI, as a user would."""
    done = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "semconv", "generate", "python", registry,
                           "-o", str(output)], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return output.read_bytes()
