"""Typed events from a semantic-convention registry.

``otelplug semconv generate python REGISTRY -o MODULE.py`` writes a module
with one typed function per event of the registry
(:mod:`otelplug.semconv.codegen_python`); the module sends through
:class:`~otelplug.events.runtime.EventEmitter`.
"""
from .runtime import ContractViolation, EventEmitter, Level

__all__ = ["ContractViolation", "EventEmitter", "Level"]
