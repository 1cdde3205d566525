"""Diagnostics raised while loading and resolving a semantic-convention registry.

Error kinds reuse Weaver's names (``UnresolvedAttributeRef``,
``DuplicateGroupId``...) so that people who know Weaver recognise them and so
that Weaver's own expected-error fixtures can be compared one to one.  Every
diagnostic carries the file and line it points at: a registry is hundreds of
YAML files and an error without a location is useless.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Diagnostic:
    """One problem found in a registry.

    ``kind`` is the Weaver error name, ``details`` the structured context
    (group ids, attribute names...) and ``severity`` is ``error`` (the
    registry cannot be trusted) or ``warning`` (Weaver's non-fatal warnings,
    e.g. a string attribute without examples).
    """

    kind: str
    message: str
    path: str | None = None
    line: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"

    @property
    def location(self) -> str:
        return location(self.path, self.line)

    def format(self) -> str:
        return f"{self.location}: {self.severity}: {self.kind}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "details": self.details,
        }


def location(path: str | None, line: int | None) -> str:
    """``file:line`` (or the file, or ``<registry>`` when unknown)."""
    if path is None:
        return "<registry>"
    return f"{path}:{line}" if line else path


class SemconvError(Exception):
    """Raised when a registry cannot be loaded or resolved.

    Holds every error diagnostic found (resolution keeps going after the
    first problem so that one run shows them all, like Weaver's
    ``CompoundError``).
    """

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.format() for d in diagnostics))

    @property
    def kinds(self) -> list[str]:
        return [d.kind for d in self.diagnostics]


def error(kind: str, message: str, path: str | None = None, line: int | None = None,
          **details: Any) -> Diagnostic:
    return Diagnostic(kind, message, path, line, details, "error")


def warning(kind: str, message: str, path: str | None = None, line: int | None = None,
            **details: Any) -> Diagnostic:
    return Diagnostic(kind, message, path, line, details, "warning")
