"""`.ci/run` fails the run when a step fails.

The real script runs in a scratch copy of the repository whose PATH starts
with shims: every Debian program the script looks for is present (so no
apt-get, no network), ``python -m pip`` exits with a chosen status and
``python -m tests.peers`` (the Go build) succeeds at once (the real
interpreter runs everything else), and ``otelplug`` only records that the
steps after pytest were reached.  The scratch repository's own tests decide what
pytest returns.
"""
from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "run"
DEBIAN_PROGRAMS = ("prometheus", "promtool", "thrift", "prometheus-alertmanager", "chromium",
                   "initdb", "openssl", "gcc", "dot")
SYSTEM_TOOLS = ("bash", "env", "dirname", "sort", "touch", "mktemp")


def _shim(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_ci(tmp_path: Path, *, pip_exit: int, test_source: str | None,
           missing: str = "") -> tuple[int, Path, str]:
    """Run the real .ci/run in a scratch repository whose PATH holds only the
    shims and the few system tools the script uses; returns (exit status,
    the marker folder, output).  ``missing`` names a Debian program left out."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy2(SCRIPT, repo / ".ci" / "run")
    (repo / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    (repo / "tests").mkdir()
    if test_source is not None:
        (repo / "tests" / "test_scratch.py").write_text(test_source)
    marks = tmp_path / "marks"
    marks.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in SYSTEM_TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for program in DEBIAN_PROGRAMS:
        if program == missing:
            continue
        _shim(bin_dir / program, "exit 0")
    _shim(bin_dir / "apt-get", f'touch "{marks}/apt-get"; exit 1')
    _shim(bin_dir / "python",
          f'if [ "${{1:-}}" = -m ] && [ "${{2:-}}" = pip ]; then touch "{marks}/pip"; exit {pip_exit}; fi\n'
          f'if [ "${{1:-}}" = -m ] && [ "${{2:-}}" = tests.peers ]; then touch "{marks}/peers"; exit 0; fi\n'
          f'exec "{sys.executable}" "$@"')
    _shim(bin_dir / "otelplug", f'touch "{marks}/otelplug"; exit 0')
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "MARKS": str(marks),
           "PYTHONDONTWRITEBYTECODE": "1"}
    res = subprocess.run(["bash", str(repo / ".ci" / "run")], env=env, capture_output=True,
                         text=True, timeout=120)
    return res.returncode, marks, res.stdout + res.stderr


PASSING_TEST = ("import os, pathlib\n"
                "def test_ran():\n"
                "    pathlib.Path(os.environ['MARKS'], 'pytest').touch()\n")


def test_a_working_install_runs_every_step(tmp_path):
    """The control: with nothing broken the script reaches its last step."""
    status, marks, out = run_ci(tmp_path, pip_exit=0, test_source=PASSING_TEST)
    assert status == 0, out
    assert sorted(p.name for p in marks.iterdir()) == ["otelplug", "peers", "pip", "pytest"], out


def test_a_failing_pip_install_fails_the_run(tmp_path):
    status, marks, out = run_ci(tmp_path, pip_exit=1, test_source=PASSING_TEST)
    assert status != 0, out
    assert sorted(p.name for p in marks.iterdir()) == ["pip"], "steps after pip ran: " + out


@pytest.mark.parametrize("source", [None, "def test_broken():\n    assert False\n"],
                         ids=["no-tests-collected", "failing-test"])
def test_a_pytest_failure_or_no_tests_fails_the_run(tmp_path, source):
    status, marks, out = run_ci(tmp_path, pip_exit=0, test_source=source)
    assert status != 0, out
    assert not (marks / "otelplug").exists(), "the semconv step ran after pytest failed: " + out


def test_a_missing_debian_program_that_cannot_be_installed_fails_the_run(tmp_path):
    """gcc missing and apt-get failing (as without network): the run stops
    before installing Python packages."""
    status, marks, out = run_ci(tmp_path, pip_exit=0, test_source=PASSING_TEST, missing="gcc")
    assert status != 0, out
    assert "build-essential" in out, out
    assert sorted(p.name for p in marks.iterdir()) == ["apt-get"], out


def test_ci_runs_the_readme_test_command_verbatim():
    """The Quickstart's one test command (install && test) is two steps of
    .ci/run, each on its own line."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Install the test dependencies and run the whole test suite", 1)[1]
    lines = block.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(lines) == 1, lines
    commands = [part.strip() for part in lines[0].split("&&")]
    assert commands == ["python -m pip install -q -e '.[test]'", "python -m pytest -q"]
    script_lines = [line.strip() for line in SCRIPT.read_text().splitlines()]
    for command in commands:
        assert command in script_lines, command
