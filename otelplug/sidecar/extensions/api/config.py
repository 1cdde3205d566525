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

SCOPES = ("public", "read", "admin")


@dataclass
class TokenConfig:
    """A bearer token: its ``value`` (use ``${env:NAME}``) or a ``file``
    holding it, and the scopes it grants (``public``, ``read``, ``admin``;
    ``admin`` implies ``read``, ``read`` implies ``public``)."""
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
    """Serve HTTPS with this certificate and key (both or neither)."""
    cert_file: str = ""
    key_file: str = ""

    def validate(self):
        if bool(self.cert_file) != bool(self.key_file):
            return [(("cert_file",), "cert_file and key_file go together")]
        return []


@dataclass
class HealthConfig:
    """Exports that failed for ``failure_window`` with nothing sent make
    the status unhealthy."""
    failure_window: Duration = Duration(30.0)


@dataclass
class ApiConfig:
    """The sidecar's HTTP API and status page (127.0.0.1 by default)."""
    endpoint: str = "127.0.0.1:13180"
    anonymous_public: bool = False
    tokens: list[TokenConfig] = field(default_factory=list)
    tls: ApiTLSConfig = field(default_factory=ApiTLSConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    sample_interval: Duration = Duration(1.0)

    def validate(self):
        errs = []
        host, sep, port = self.endpoint.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            errs.append((("endpoint",), f"must be host:port, got {self.endpoint!r}"))
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
