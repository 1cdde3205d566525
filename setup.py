"""Builds otelplug's Cython extensions: every cython_ext/NAME.pyx becomes
the module otelplug._ext.NAME.

OTELPLUG_DEBUG=1 at build time makes a debug build: C asserts on, Cython
bounds checks (IndexError on an out-of-bounds buffer access) and line tracing on (coverage and profilers see Cython lines),
and the debug-only counters that tests check for balance.
OTELPLUG_EXTENSIONS=ring,span_codec builds only those.
"""
import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
SRC = HERE / "cython_ext"
DEBUG = os.environ.get("OTELPLUG_DEBUG", "") not in ("", "0")

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
# The bounds directives live here, not in the .pyx headers: a file's own
# `# cython:` directives override these, which silently turned the debug
# build's checks off.  wraparound stays off in both builds so that a
# negative index means the same thing in each (an out-of-bounds access,
# which the debug build reports).
directives = {"language_level": "3", "embedsignature": True,
              "boundscheck": False, "wraparound": False}
cflags = ["-O2"]
if DEBUG:
    macros += [("OTP_DEBUG", "1"), ("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    directives.update(boundscheck=True, linetrace=True, profile=True)
    cflags = ["-O0", "-g", "-UNDEBUG"]

extensions = [
    Extension(
        f"otelplug._ext.{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        include_dirs=[str(SRC.relative_to(HERE)), numpy.get_include()],
        define_macros=macros,
        extra_compile_args=cflags,
    )
    for pyx in sorted(SRC.glob("*.pyx"))
    if not os.environ.get("OTELPLUG_EXTENSIONS")
    or pyx.stem in os.environ["OTELPLUG_EXTENSIONS"].split(",")
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=[str(SRC)],
        compiler_directives=directives,
        # OTELPLUG_CYTHON_BUILD_DIR: where the generated C goes (the debug-build
        # test keeps it out of the source tree)
        build_dir=os.environ.get("OTELPLUG_CYTHON_BUILD_DIR")
        or ("build/cython-debug" if DEBUG else "build/cython"),
    ),
)
