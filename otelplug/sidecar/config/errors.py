"""Config errors that name where they are: ``a::b::c`` paths (as the
Collector prints them) plus ``file:line`` when the YAML position is known."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigError:
    path: tuple[str, ...]
    message: str
    location: str | None = None   # "file.yaml:12"

    def __str__(self) -> str:
        where = "::".join(self.path)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} ({self.location})" if self.location else text


class ConfigErrors(Exception):
    """All errors found in one configuration, reported together."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class ErrorList:
    """The errors found so far in one configuration (decoding goes on after
    an error so that all are reported at once), with the YAML line table to
    place them."""

    def __init__(self, lines: dict | None = None, filename: str | None = None,
                 unset: dict | None = None):
        self.errors: list[ConfigError] = []
        self.lines = lines or {}
        self.filename = filename
        self.unset = unset or {}      # key path -> the unset env variable its value came from

    def add(self, path, message: str, at=None) -> None:
        """An error about ``path``, placed at the line of ``at`` (a path
        below it, such as the offending key itself) when given."""
        path = tuple(str(p) for p in path)
        at = path if at is None else tuple(str(p) for p in at)
        if at in self.unset:
            message += f" (environment variable {self.unset[at]} is not set)"
        loc = None
        # the deepest known position at or above the path
        for k in range(len(at), -1, -1):
            line = self.lines.get(at[:k])
            if line is not None:
                loc = f"{self.filename or '<config>'}:{line}"
                break
        self.errors.append(ConfigError(path, message, loc))

    def has_errors_under(self, path) -> bool:
        prefix = tuple(str(p) for p in path)
        return any(e.path[:len(prefix)] == prefix for e in self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigErrors(self.errors)
