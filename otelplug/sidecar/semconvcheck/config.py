"""The configuration shared by the ``semconv`` processor and the
``semconv_router`` connector, and the registry it names (resolved once per
content: validating a config and starting the sidecar load it once)."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Literal

from otelplug.semconv import SemconvError, resolve_registry

LEVELS = ("violation", "improvement", "information")
ACTIONS = ("pass", "annotate", "route", "drop")
PASS, ANNOTATE, ROUTE, DROP = range(4)
ACTION_CODE = {a: i for i, a in enumerate(ACTIONS)}

Action = Literal["pass", "annotate", "drop", "route"]


# ------------------------------------------------------------------ config

@dataclass
class LevelActions:
    """What to do with an item whose findings include this level.

    ``violation``: the action for items with a violation finding.

    ``improvement``: the action for items with an improvement finding.

    ``information``: the action for items with an information finding.
    """
    violation: Action = "pass"
    improvement: Action = "pass"
    information: Action = "pass"

    def codes(self) -> dict[str, int]:
        return {lvl: ACTION_CODE[getattr(self, lvl)] for lvl in LEVELS}


@dataclass
class SemconvConfig:
    """``registry``: a registry folder (or a manifest / single YAML file),
    resolved once at startup with ``otelplug.semconv``; relative paths are
    relative to the sidecar's working directory.

    ``actions``: per finding level, ``pass`` (count only), ``annotate``
    (add ``otelplug.semconv.findings`` / ``otelplug.semconv.level`` to spans
    and log records), ``drop``, or ``route`` (``semconv_router`` connector
    only).  An item gets the strongest action among its findings' levels
    (pass < annotate < route < drop).

    ``check_resources``: check each distinct resource once.
    ``max_shapes`` / ``max_variants``: bounds of the shape cache.
    ``label_limit``: distinct non-registry names kept as
    ``attribute_or_metric`` label values before they become ``other``.
    """
    registry: str = ""
    actions: LevelActions = field(default_factory=LevelActions)
    check_resources: bool = True
    max_shapes: int = 10000
    max_variants: int = 256
    label_limit: int = 100

    allow_route = False

    def validate(self):
        errs = []
        if not self.registry:
            errs.append((("registry",), "required: the path of a semantic-convention registry "
                                        "(a folder, or its manifest)"))
        else:
            try:
                registry_for(self.registry)
            except SemconvError as exc:
                for d in exc.diagnostics:
                    errs.append((("registry",), f"{d.format()}"))
        for lvl in LEVELS:
            if getattr(self.actions, lvl) == "route" and not self.allow_route:
                errs.append((("actions", lvl),
                             "route sends items to other pipelines, which a processor cannot do: use "
                             "the semconv_router connector (connectors::semconv_router) for route"))
        for name in ("max_shapes", "max_variants"):
            if getattr(self, name) < 1:
                errs.append(((name,), "must be at least 1"))
        if self.label_limit < 0:
            errs.append((("label_limit",), "must be 0 or more"))
        return errs


# ---------------------------------------------------------------- registry

_REGISTRIES: dict = {}
_REG_LOCK = threading.Lock()


def _signature(path: str):
    real = os.path.realpath(path)
    if not os.path.exists(real):
        return (real,)
    if os.path.isfile(real):
        st = os.stat(real)
        root = os.path.dirname(real)
        entries = [(real, st.st_mtime_ns, st.st_size)]
    else:
        root, entries = real, []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.endswith((".yaml", ".yml", ".json")):
                full = os.path.join(dirpath, f)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                entries.append((full, st.st_mtime_ns, st.st_size))
    return (real, tuple(sorted(entries)))


def registry_for(path: str):
    """The resolved registry at ``path``, resolved once per content
    (SemconvError if it has errors; RegistryNotFound if absent)."""
    sig = _signature(path)
    with _REG_LOCK:
        hit = _REGISTRIES.get(sig)
    if hit is not None:
        if isinstance(hit, SemconvError):
            raise hit
        return hit
    try:
        reg = resolve_registry(path)
    except SemconvError as exc:
        hit = exc
    else:
        hit = reg
    with _REG_LOCK:
        _REGISTRIES[sig] = hit
    if isinstance(hit, SemconvError):
        raise hit
    return hit
