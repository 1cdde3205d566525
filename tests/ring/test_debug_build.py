"""The debug build (OTELPLUG_DEBUG=1): it compiles, enables its checks, and
its counters balance after real use.  The ring is built in debug mode into
a temporary folder and exercised in a separate interpreter."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = textwrap.dedent("""
    import importlib.util, os, sys
    so = sys.argv[1]
    spec = importlib.util.spec_from_file_location("otelplug._ext.ring", so)
    ring = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ring)
    assert ring.DEBUG_BUILD, "not a debug build"
    d = sys.argv[2]
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
""")


def test_debug_build_counters_balance(tmp_path):
    build = tmp_path / "build"
    env = dict(os.environ, OTELPLUG_DEBUG="1", OTELPLUG_EXTENSIONS="ring")
    res = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(build),
                          "--build-temp", str(tmp_path / "tmp")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (so,) = build.glob("otelplug/_ext/ring*.so")
    run = subprocess.run([sys.executable, "-c", SCENARIO, str(so), str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "balanced" in run.stdout
