"""Semantic conventions: Weaver-compatible registry loader, resolver,
compatibility checker, diff and live-check engine.

Typical use::

    from otelplug.semconv import resolve_registry, LiveChecker
    registry = resolve_registry("semconv/")
    checker = LiveChecker(registry)
    findings = checker.check_span("GET /", "server", {"http.request.method": "GET"})
"""
from .errors import Diagnostic, SemconvError
from .loader import load_registry
from .registry import ResolvedRegistry
from .resolver import resolve_registry

__all__ = ["Diagnostic", "SemconvError", "ResolvedRegistry", "load_registry", "resolve_registry"]
