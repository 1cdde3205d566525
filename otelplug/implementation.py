"""Which implementation of the hot path this process runs: the compiled
Cython extension (``otelplug._ext``) or the pure-Python reference.

One decision for the whole process, made once when this module is first
imported, and used by the ring, the codecs, the OTLP encoder, the shm receiver's record
checks, the semantic-convention span shapes and the store's text columns,
so that they never mix:

* ``OTELPLUG_PURE_PYTHON=1`` asks for the reference (tests, debugging);
* otherwise the compiled extension, if every one of its modules is built;
* otherwise the reference, which is correct but about ten times slower per
  span: the usual cause is running from a source tree whose extension was
  never built.  ``warn_if_not_compiled`` says so loudly at sidecar start,
  and the choice is visible in ``otelplug top`` and in the sidecar's
  ``otelplug_build_info`` self-metric.

Availability is checked by locating the modules, not importing them: the
codec extension imports ``otelplug.codec`` as it initialises, which in
turn asks this module, so an import here would be circular.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass

PURE_ENV = "OTELPLUG_PURE_PYTHON"
COMPILED, PURE = "cython", "python"
#: every module cython_ext/ builds; one missing means a stale or partial build
EXTENSIONS = ("ring", "span_codec", "log_codec", "metric_codec", "definition_codec",
              "otlp_encoder", "span_shape", "record_check", "store_json", "trace_walk")


@dataclass(frozen=True)
class Selection:
    name: str                      # COMPILED or PURE
    requested_pure: bool           # OTELPLUG_PURE_PYTHON asked for the reference
    missing: tuple[str, ...]       # extension modules that are not built

    @property
    def compiled(self) -> bool:
        return self.name == COMPILED

    def describe(self) -> str:
        if self.compiled:
            return "cython (compiled extension)"
        if self.requested_pure:
            return f"python (pure-Python reference, {PURE_ENV}=1)"
        return f"python (pure-Python reference: extension not built: {', '.join(self.missing)})"


def _select() -> Selection:
    requested = os.environ.get(PURE_ENV, "").strip() not in ("", "0")
    missing = tuple(name for name in EXTENSIONS
                    if importlib.util.find_spec(f"otelplug._ext.{name}") is None)
    name = PURE if requested or missing else COMPILED
    return Selection(name, requested, missing)


SELECTED = _select()


def use_compiled() -> bool:
    """True when this process runs the compiled extension."""
    return SELECTED.compiled


def warn_if_not_compiled(log: logging.Logger) -> bool:
    """Log a loud warning when the reference runs although nobody asked for
    it; True if it did."""
    if SELECTED.compiled or SELECTED.requested_pure:
        return False
    log.warning("the compiled extension is not built (missing: %s): running the pure-Python "
                "reference, about 10x more CPU per span. Build it with `pip install .` or "
                "`python setup.py build_ext --inplace`; set %s=1 to choose the reference "
                "deliberately.", ", ".join(SELECTED.missing), PURE_ENV)
    return True
