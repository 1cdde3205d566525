"""Where factories come from: one module per component type.

Modules are imported lazily; one that cannot be imported (an optional
dependency missing) is remembered with its reason, and a config that uses
it gets that reason as an error instead of the whole sidecar failing.
"""
from __future__ import annotations

import importlib

from .component import Factory, Kind

COMPONENT_MODULES = {
    Kind.RECEIVER: ["shm", "otlp", "semconv_findings"],
    Kind.PROCESSOR: ["batch", "memory_limiter", "attributes", "resource", "semconv",
                      "probabilistic_sampler", "adaptive_sampler", "tail_sampling"],
    Kind.EXPORTER: ["otlp", "file", "debug", "prometheus", "jaeger", "store", "loadbalancing"],
    Kind.CONNECTOR: ["forward", "semconv_router", "spanmetrics", "servicegraph",
                      "trace_assembly", "analytics"],
    Kind.EXTENSION: ["health_check", "file_storage", "api", "alerts"],
}


class Registry:
    def __init__(self, factories: list[Factory] | None = None):
        self._by_kind: dict[Kind, dict[str, Factory]] = {k: {} for k in Kind}
        self.unavailable: dict[tuple[Kind, str], str] = {}
        for f in factories or []:
            self.add(f)

    def add(self, factory: Factory) -> None:
        table = self._by_kind[factory.kind]
        for name in (factory.type, *factory.aliases):
            table[name] = factory

    def get(self, kind: Kind, type_name: str) -> Factory | None:
        return self._by_kind[kind].get(type_name)

    def types(self, kind: Kind) -> list[str]:
        return sorted(self._by_kind[kind])

    @classmethod
    def default(cls) -> "Registry":
        reg = cls()
        for kind, names in COMPONENT_MODULES.items():
            for name in names:
                modname = f"otelplug.sidecar.{kind.value}.{name}"
                try:
                    module = importlib.import_module(modname)
                except ModuleNotFoundError as exc:
                    if exc.name == modname:
                        raise     # a listed module must exist: not a config problem
                    reg.unavailable[(kind, name)] = f"needs the Python package {exc.name!r}"
                    continue
                for f in getattr(module, "factories", None) or [module.factory]:
                    reg.add(f)
        return reg
