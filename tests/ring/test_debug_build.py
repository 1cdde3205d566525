"""The debug build (OTELPLUG_DEBUG=1): every extension compiles, Cython's
bounds checks really are on (a deliberate out-of-bounds read raises), the
debug-only counters balance after real use, and the codec fuzz tests pass
on it.

All extensions are built once per session into a scratch folder, and run
through an overlay package (tests/overlay.py) first on PYTHONPATH of the
interpreters that exercise it, so the source tree is never touched.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.overlay import otelplug_overlay

ROOT = Path(__file__).resolve().parents[2]
#: the fuzz and corrupt-input tests of the decoders and the ring
FUZZ_TESTS = ("tests/ring/test_fuzz.py", "tests/codec/test_corrupt_records.py",
              "tests/codec/test_span_columns.py")


@pytest.fixture(scope="session")
def debug_overlay(tmp_path_factory) -> Path:
    """A folder to put first on PYTHONPATH to import otelplug with every
    extension from a debug build."""
    scratch = tmp_path_factory.mktemp("debug-build")
    env = dict(os.environ, OTELPLUG_DEBUG="1", OTELPLUG_CYTHON_BUILD_DIR=str(scratch / "cython"))
    env.pop("OTELPLUG_EXTENSIONS", None)
    res = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--parallel", "2",
                          "--build-lib", str(scratch / "lib"), "--build-temp", str(scratch / "tmp")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    built = {p.name.split(".")[0]: p for p in (scratch / "lib" / "otelplug" / "_ext").glob("*.so")}
    assert sorted(built) == sorted(p.stem for p in (ROOT / "cython_ext").glob("*.pyx"))
    return otelplug_overlay(scratch / "overlay", built.values())


def run_debug(overlay: Path, code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in an interpreter that imports the debug build (checked
    before anything else runs)."""
    preamble = textwrap.dedent("""
        import otelplug._ext.ring as _ring
        assert _ring.DEBUG_BUILD, "not the debug build: " + _ring.__file__
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(overlay), str(ROOT)]))
    env.pop("OTELPLUG_PURE_PYTHON", None)
    # -P: not the current folder (the source tree) ahead of the overlay
    return subprocess.run([sys.executable, "-P", "-c", preamble + textwrap.dedent(code), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


COUNTERS = """
    import os, sys
    from otelplug._ext import ring
    d = sys.argv[1]
    for i in range(5):
        path = os.path.join(d, f"r{i}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(fd, ring.HEADER_SIZE + 4096)
        w = ring.RingWriter(fd, 4096, 1 << 20, 0)
        r = ring.RingReader(fd, ring.HEADER_SIZE + 4096, path)
        for k in range(100):
            w.write(1, bytes([k]) * (k + 1))
            b = r.scan(8)
            held = [b.payload(j) for j in range(b.count)]   # views outlive close()
            r.commit(b)
        w.close()
        r.close()
        del held, b
        os.close(fd)
    c = ring.debug_counters()
    assert c["maps_opened"] == 10 and c["maps_released"] == 10, c
    print("balanced", c)
"""


def test_debug_build_counters_balance(debug_overlay, tmp_path):
    run = run_debug(debug_overlay, COUNTERS, str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert "balanced" in run.stdout


OUT_OF_BOUNDS = """
    import numpy as np
    from types import SimpleNamespace
    from otelplug import codec
    # four records announced by offsets and lengths, but a type for only one:
    # decode_span_columns reads types[1], past the end of that buffer
    batch = SimpleNamespace(data=np.zeros(256, np.uint8), offsets=np.zeros(4, np.uint64),
                            lengths=np.zeros(4, np.uint32), types=np.zeros(1, np.uint8))
    try:
        codec.by_name("cython").decode_span_columns(batch)
    except IndexError as exc:
        print("IndexError:", exc)
    else:
        print("no error")
"""


def test_an_out_of_bounds_read_raises_in_the_debug_build(debug_overlay):
    run = run_debug(debug_overlay, OUT_OF_BOUNDS)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("IndexError: Out of bounds on buffer access"), run.stdout


PYTEST = """
    import sys
    import pytest
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
"""


def test_codec_fuzz_tests_pass_on_the_debug_build(debug_overlay):
    run = run_debug(debug_overlay, PYTEST, *FUZZ_TESTS, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout, run.stdout[-2000:]
