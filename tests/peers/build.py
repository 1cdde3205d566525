"""Build the real OpenTelemetry Collector and Jaeger, once per version.

Binaries are cached outside the repository under ``~/.cache/otelplug-peers``
(``$OTELPLUG_PEERS_CACHE`` overrides), one directory per version and state
of the Go sources here, so each is compiled once per machine. The Go sources kept here are a
hand-written Collector ``main.go`` and ``go.mod`` templates; everything
else comes from the Go module proxy at the pinned versions.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# One Collector release for every module: contrib and the core v0.x modules
# share the release number; the core v1.x modules of the same release are
# numbered separately (v0.161.0 goes with v1.67.0, see otelcol's go.mod).
COLLECTOR_RELEASE = "v0.161.0"
COLLECTOR_CORE = "v1.67.0"
JAEGER_VERSION = "v1.76.0"

# The shared 2-core machine: never more than two compile jobs.
GO_BUILD_JOBS = "2"


def cache_dir() -> Path:
    override = os.environ.get("OTELPLUG_PEERS_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "otelplug-peers"


def _sources_digest(folder: str) -> str:
    """A short hash of the Go sources kept here, so that editing them
    builds anew instead of reusing a binary made from older ones."""
    h = hashlib.sha256()
    for path in sorted((HERE / folder).iterdir()):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:10]


def collector_binary() -> Path:
    return cache_dir() / f"otelcol-{COLLECTOR_RELEASE}-{_sources_digest('otelcol')}" / "otelcol"


def jaeger_binary() -> Path:
    return cache_dir() / f"jaeger-{JAEGER_VERSION}-{_sources_digest('jaeger')}" / "jaeger"


def _fill(template: Path, values: dict[str, str]) -> str:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace("{{%s}}" % key, value)
    return text


def _go(args: list[str], cwd: Path, log) -> None:
    env = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="0")
    log.write(f"$ go {' '.join(args)}  (in {cwd})\n")
    log.flush()
    proc = subprocess.run(["go", *args], cwd=cwd, env=env, stdout=log,
                          stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed in {cwd}; see {log.name}")


def _build(binary: Path, files: dict[str, str], package: str) -> float:
    """Write ``files`` into a module beside ``binary`` and build ``package``.

    Returns the seconds the build took, 0.0 when the binary was cached. A
    lock file serialises concurrent callers (pytest workers, .ci/run)."""
    binary.parent.mkdir(parents=True, exist_ok=True)
    with open(binary.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return 0.0
        src = binary.parent / "src"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir()
        for name, text in files.items():
            (src / name).write_text(text)
        started = time.monotonic()
        with open(binary.parent / "build.log", "w") as log:
            _go(["mod", "tidy"], src, log)
            tmp = binary.with_suffix(".tmp")
            _go(["build", "-p", GO_BUILD_JOBS, "-trimpath", "-o", str(tmp), package],
                src, log)
        tmp.rename(binary)  # atomic: a half-written binary is never cached
        return time.monotonic() - started


def build_collector() -> float:
    values = {"CONTRIB": COLLECTOR_RELEASE, "CORE": COLLECTOR_CORE,
              "VERSION": COLLECTOR_RELEASE}
    files = {"go.mod": _fill(HERE / "otelcol" / "go.mod.tmpl", values),
             "main.go": _fill(HERE / "otelcol" / "main.go", values)}
    return _build(collector_binary(), files, ".")


def build_jaeger() -> float:
    files = {"go.mod": _fill(HERE / "jaeger" / "go.mod.tmpl",
                             {"JAEGER": JAEGER_VERSION})}
    return _build(jaeger_binary(), files, "github.com/jaegertracing/jaeger/cmd/jaeger")


BUILDERS = {"collector": (build_collector, collector_binary),
            "jaeger": (build_jaeger, jaeger_binary)}


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "build":
        print("usage: python -m tests.peers build [collector] [jaeger]", file=sys.stderr)
        return 2
    names = argv[1:] or list(BUILDERS)
    if shutil.which("go") is None:
        print("tests.peers: the 'go' toolchain is not on PATH", file=sys.stderr)
        return 1
    for name in names:
        build, binary = BUILDERS[name]
        try:
            seconds = build()
        except RuntimeError as exc:
            print(f"tests.peers: building {name} failed: {exc}", file=sys.stderr)
            return 1
        state = "cached" if seconds == 0.0 else f"built in {seconds:.0f} s"
        print(f"tests.peers: {name} {binary()} ({state})")
    return 0
