"""One implementation selector for the whole process (otelplug.implementation):
the compiled extension when it is built, the pure-Python reference when
asked for with OTELPLUG_PURE_PYTHON=1 or when the extension is missing, and
never silently: the sidecar warns at start, ``otelplug top``, the
health_check status and the ``otelplug_build_info`` self-metric show it.

Each case runs in a fresh interpreter (the choice is made once per
process).  "Not built" is a real source tree without the compiled modules
(tests/overlay.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from tests.overlay import otelplug_overlay
from tests.requirements import ROOT
from tests.waiting import wait_for

REPORT = textwrap.dedent("""
    import json
    from otelplug import codec, implementation
    from otelplug.ring import impl
    from otelplug.sidecar.exporters import otlp
    from otelplug.sidecar.semconvcheck import engine as _semconv_engine
    from otelplug.sidecar.receivers import ring_checks
    print(json.dumps({"selected": implementation.SELECTED.name,
                      "missing": list(implementation.SELECTED.missing),
                      "ring": impl.default().__name__, "codec": codec.default_impl().name,
                      "encoder": otlp._fast is not None,
                      "shapes": _semconv_engine._span_shape is not None,
                      "checks": ring_checks._record_check is not None}))
""")


@pytest.fixture(scope="module")
def unbuilt_tree(tmp_path_factory) -> Path:
    """A folder to put first on PYTHONPATH: otelplug from this checkout, but
    with no compiled module, as a source tree nobody built."""
    return otelplug_overlay(tmp_path_factory.mktemp("unbuilt"))


def env_for(first_on_path: Path = ROOT, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OTELPLUG_PURE_PYTHON"}
    env["PYTHONPATH"] = os.pathsep.join([str(first_on_path), str(ROOT)])
    env.update(extra)
    return env


def report(env) -> dict:
    # -P: the current folder does not go ahead of PYTHONPATH
    res = subprocess.run([sys.executable, "-P", "-c", REPORT], env=env, capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_the_compiled_extension_everywhere_when_built():
    assert report(env_for()) == {"selected": "cython", "missing": [], "ring": "otelplug._ext.ring",
                                 "codec": "cython", "encoder": True, "shapes": True,
                                 "checks": True}


def test_pure_python_everywhere_when_asked():
    assert report(env_for(OTELPLUG_PURE_PYTHON="1")) == {
        "selected": "python", "missing": [], "ring": "otelplug.ring._pyring", "codec": "python",
        "encoder": False, "shapes": False, "checks": False}


def test_pure_python_everywhere_when_not_built(unbuilt_tree):
    got = report(env_for(unbuilt_tree))
    assert got["selected"] == "python" and got["codec"] == "python"
    assert got["ring"] == "otelplug.ring._pyring"
    assert not got["encoder"] and not got["shapes"] and not got["checks"]
    assert sorted(got["missing"]) == sorted(p.stem for p in (ROOT / "cython_ext").glob("*.pyx"))


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_sidecar(tmp_path, env) -> tuple[str, str, dict]:
    """Start `otelplug run` until its self-metrics and health_check answer;
    returns (the build_info sample line, the log, the health status)."""
    port, health_port = _free_port(), _free_port()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(textwrap.dedent(f"""
        receivers: {{shm: {{channels: [impl]}}}}
        exporters: {{debug: {{}}}}
        extensions: {{health_check: {{endpoint: 127.0.0.1:{health_port}}}}}
        service:
          extensions: [health_check]
          telemetry: {{metrics: {{address: 127.0.0.1:{port}}}}}
          pipelines: {{traces: {{receivers: [shm], exporters: [debug]}}}}
    """))
    log = tmp_path / "sidecar.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-P", "-m", "otelplug.cli.main", "run", "--config", str(cfg)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        def build_info():
            if proc.poll() is not None:
                raise AssertionError(f"sidecar exited: {log.read_text()}")
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            return next(line for line in text.splitlines() if line.startswith("otelplug_build_info{"))
        line = wait_for(build_info, what="the sidecar's self-metrics")
        health = wait_for(lambda: json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{health_port}/", timeout=5).read()), what="the health status")
    finally:
        proc.terminate()
        proc.wait(30)
    return line, log.read_text(), health


def test_sidecar_from_an_unbuilt_tree_warns_and_says_so_in_its_metrics(tmp_path, unbuilt_tree):
    line, log, health = run_sidecar(tmp_path, env_for(unbuilt_tree))
    assert 'implementation="python"' in line and float(line.rsplit(" ", 1)[1]) == 1, line
    assert health["implementation"] == "python"
    assert "WARNING" in log and "the compiled extension is not built" in log, log


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "asked-for-python"])
def test_sidecar_says_which_implementation_runs_and_warns_only_when_not_asked(tmp_path, pure):
    env = env_for(**({"OTELPLUG_PURE_PYTHON": "1"} if pure else {}))
    line, log, health = run_sidecar(tmp_path, env)
    assert f'implementation="{"python" if pure else "cython"}"' in line, line
    assert health["implementation"] == ("python" if pure else "cython")
    assert "the compiled extension is not built" not in log, log


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "asked-for-python"])
def test_top_shows_the_implementation(pure):
    env = env_for(**({"OTELPLUG_PURE_PYTHON": "1"} if pure else {}))
    name = "python" if pure else "cython"
    top = [sys.executable, "-P", "-m", "otelplug.cli.main", "top"]
    table = subprocess.run(top, env=env, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert f"implementation: {name}" in table.stdout.splitlines()[0]
    doc = subprocess.run(top + ["--json"], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(doc.stdout)["implementation"] == name
