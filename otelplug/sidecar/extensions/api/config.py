"""Config of the ``api`` extension::

    extensions:
      api:
        endpoint: 127.0.0.1:13180
        anonymous_public: true          # /api/v1/public without a token
        tokens:
          - name: ops
            value: ${env:OTELPLUG_API_TOKEN}   # or file: /run/secrets/api-token
            scopes: [read, admin]
        tls: {cert_file: server.pem, key_file: server.key}   # optional
        health: {failure_window: 30s}
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...config.decode import Duration
from ...config.transport import endpoint_errors

SCOPES = ("public", "read", "admin")


@dataclass
class TokenConfig:
    """``name``: names the token in logs and 403 messages (never its value).

    ``value``: the token itself; write ``${env:NAME}`` rather than the secret.

    ``file``: a file holding the token instead of ``value`` (read at start).

    ``scopes``: what it may do: ``public``, ``read``, ``admin`` (``admin``
    implies ``read``, ``read`` implies ``public``).
    """
    name: str = ""
    value: str = ""
    file: str = ""
    scopes: list[str] = field(default_factory=lambda: ["read"])

    def validate(self):
        errs = []
        if bool(self.value) == bool(self.file):
            errs.append((("value",), "set exactly one of value or file"))
        for i, s in enumerate(self.scopes):
            if s not in SCOPES:
                errs.append((("scopes", str(i)), f"unknown scope {s!r}: use one of {', '.join(SCOPES)}"))
        return errs


@dataclass
class ApiTLSConfig:
    """``cert_file``: PEM certificate to serve HTTPS with (with ``key_file``).

    ``key_file``: its PEM private key.
    """
    cert_file: str = ""
    key_file: str = ""

    def validate(self):
        if bool(self.cert_file) != bool(self.key_file):
            return [(("cert_file",), "cert_file and key_file go together")]
        return []


@dataclass
class HealthConfig:
    """``failure_window``: an exporter whose sends failed during this long,
    with none succeeding, makes the status unhealthy (naming it and why).
    """
    failure_window: Duration = Duration(30.0)


@dataclass
class ApiConfig:
    """``endpoint``: ``host:port`` of the HTTP API and status page.

    ``anonymous_public``: serve ``/api/v1/public`` (sanitized per-service
    aggregates) without a token.

    ``tokens``: the bearer tokens and their scopes.

    ``tls``: serve HTTPS instead of HTTP.

    ``health``: when the status turns unhealthy.

    ``sample_interval``: how often counters are sampled for rates, charts
    and health.
    """
    endpoint: str = "127.0.0.1:13180"
    anonymous_public: bool = False
    tokens: list[TokenConfig] = field(default_factory=list)
    tls: ApiTLSConfig = field(default_factory=ApiTLSConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    sample_interval: Duration = Duration(1.0)

    def validate(self):
        errs = list(endpoint_errors(self.endpoint))
        names = [t.name for t in self.tokens]
        for i, t in enumerate(self.tokens):
            if not t.name:
                errs.append((("tokens", str(i), "name"), "every token needs a name (it is logged, never the value)"))
            elif names.count(t.name) > 1:
                errs.append((("tokens", str(i), "name"), f"token name {t.name!r} is used twice"))
        if not self.tokens and not self.anonymous_public:
            errs.append((("tokens",), "no tokens and anonymous_public is false: nothing could use the API"))
        if self.sample_interval <= 0:
            errs.append((("sample_interval",), "must be > 0"))
        return errs
