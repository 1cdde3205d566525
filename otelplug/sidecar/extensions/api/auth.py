"""Bearer-token authentication with scopes.

Token values are read once at start (config value, usually
``${env:...}``, or a file) and compared in constant time.  Scopes nest:
``admin`` > ``read`` > ``public``.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass

from .config import SCOPES, ApiConfig

_RANK = {s: i for i, s in enumerate(SCOPES)}


class AuthError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Principal:
    name: str
    rank: int       # the highest scope granted

    def allows(self, scope: str) -> bool:
        return self.rank >= _RANK[scope]


def load_tokens(config: ApiConfig) -> list[tuple[bytes, Principal]]:
    out = []
    for i, t in enumerate(config.tokens):
        if t.file:
            try:
                with open(t.file, encoding="utf-8") as f:
                    value = f.read().strip()
            except OSError as exc:
                raise ValueError(f"extensions::api::tokens::{i}::file: cannot read {t.file!r}: {exc}") from None
        else:
            value = t.value.strip()
        if not value:
            raise ValueError(f"extensions::api::tokens::{i}: token {t.name!r} is empty")
        out.append((value.encode(), Principal(t.name, max(_RANK[s] for s in t.scopes))))
    return out


class Authenticator:
    def __init__(self, config: ApiConfig):
        self.tokens = load_tokens(config)
        self.anonymous_public = config.anonymous_public

    def check(self, authorization: str | None, scope: str) -> Principal:
        """The caller, if allowed ``scope``; AuthError 401/403 otherwise."""
        if not authorization:
            if scope == "public" and self.anonymous_public:
                return Principal("anonymous", _RANK["public"])
            raise AuthError(401, "a bearer token is required (Authorization: Bearer <token>)")
        kind, _, value = authorization.partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            raise AuthError(401, "use Authorization: Bearer <token>")
        given = value.strip().encode()
        found = None
        for secret, who in self.tokens:
            # compare against every token so timing says nothing about which matched
            if hmac.compare_digest(secret, given):
                found = who
        if found is None:
            raise AuthError(401, "unknown token")
        if not found.allows(scope):
            raise AuthError(403, f"token {found.name!r} lacks the {scope!r} scope")
        return found
