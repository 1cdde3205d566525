"""Component ids, kinds and factories.

As in the Collector, a component type is a factory with a typed default
config (a dataclass, see config/decode.py) and a constructor; component
instances are named ``type`` or ``type/name`` in the config.  A new
component is one small module defining ``factory``.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Callable

from .shared import SharedInstances

SIGNALS = ("traces", "metrics", "logs")
#: how settled a component is, as the Collector's stability levels: its
#: config and behaviour may change in development and alpha, change only with
#: a deprecation period in beta, and keep compatibility once stable
STABILITY_LEVELS = ("development", "alpha", "beta", "stable")
_ID_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9_]*)(?:/([^/\s]+))?$")


class Kind(enum.Enum):
    RECEIVER = "receivers"
    PROCESSOR = "processors"
    EXPORTER = "exporters"
    CONNECTOR = "connectors"
    EXTENSION = "extensions"

    @property
    def singular(self) -> str:
        return self.value[:-1]


@dataclass(frozen=True, order=True)
class ComponentID:
    type: str
    name: str = ""

    @classmethod
    def parse(cls, text) -> "ComponentID":
        m = _ID_RE.match(str(text).strip())
        if not m:
            raise ValueError(f"invalid component id {text!r}: use type or type/name")
        return cls(m.group(1), m.group(2) or "")

    def __str__(self) -> str:
        return f"{self.type}/{self.name}" if self.name else self.type


@dataclass(frozen=True)
class PipelineID:
    """``traces``, ``metrics``, ``logs`` or a named one like ``traces/2``."""
    signal: str
    name: str = ""

    @classmethod
    def parse(cls, text) -> "PipelineID":
        cid = ComponentID.parse(text)
        if cid.type not in SIGNALS:
            raise ValueError(f"pipeline {text!r}: the signal must be one of {', '.join(SIGNALS)}")
        return cls(cid.type, cid.name)

    def __str__(self) -> str:
        return f"{self.signal}/{self.name}" if self.name else self.signal


@dataclass
class Factory:
    """What a component module registers.

    type:      the id prefix in config (``batch``, ``otlp``)
    kind:      receiver, processor, exporter, connector or extension
    config:    dataclass of the typed config; its defaults are the default config
    create:    callable(settings: CreateSettings, config) -> component
    signals:   the pipeline signals it handles; for connectors, the
               (exporter-side signal, receiver-side signal) pairs it joins
    mutates:   processors that change data in place get their own copy on fan-out
    aliases:   other type names accepted in config (``otlphttp`` for ``otlp_http``)
    stability: one of STABILITY_LEVELS (shown by ``otelplug components`` and
               in docs/components.md)
    validate_pipelines: connectors only, callable(config, id, exporting
               pipelines, receiving pipelines) -> [(path, message)]: the
               connector's own checks of the pipelines around it, run in
               config validation once its config is valid
    """
    type: str
    kind: Kind
    config: type
    create: Callable
    signals: tuple = SIGNALS
    connects: tuple = ()
    mutates: bool = False
    aliases: tuple = ()
    stability: str = "alpha"
    validate_pipelines: Callable | None = None

    def __post_init__(self):
        if self.stability not in STABILITY_LEVELS:
            raise ValueError(f"{self.kind.singular} {self.type!r}: stability {self.stability!r} "
                             f"is not one of {', '.join(STABILITY_LEVELS)}")


@dataclass
class CreateSettings:
    """What a component gets besides its config."""
    id: ComponentID
    kind: Kind
    signal: str | None = None          # the pipeline signal it serves, where one applies
    telemetry: object = None           # sidecar self-telemetry (metrics registry)
    host: object = None                # the running service (its extensions)
    extra: dict = field(default_factory=dict)
    # instances shared between components, owned by the service (shared.py)
    shared: SharedInstances = field(default_factory=SharedInstances)
