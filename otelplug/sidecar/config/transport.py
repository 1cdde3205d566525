"""Config types every network component shares, as the Collector's
``configtls`` / ``confignet``: one endpoint parser and one TLS client and
server config, so receivers, exporters and extensions accept and reject the
same ``host:port`` and TLS settings with the same messages."""
from __future__ import annotations

import re
from dataclasses import dataclass

_ENDPOINT_RE = re.compile(r"^(?:\[([0-9a-fA-F:.]+)\]|([^\s:\[\]]+)):(\d{1,5})$")


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) -> (host, port); ValueError
    otherwise.  The host is required: an empty one would mean every
    interface, which should be written out as 0.0.0.0."""
    m = _ENDPOINT_RE.match(endpoint.strip())
    if not m or int(m.group(3)) > 65535:
        raise ValueError(f"must be host:port (like 127.0.0.1:4317, or 0.0.0.0:4317 to listen on "
                         f"every interface), got {endpoint!r}")
    return m.group(1) or m.group(2), int(m.group(3))


def join_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def endpoint_errors(endpoint: str, path=("endpoint",)) -> list:
    """``validate()`` errors of an endpoint field: [] or one (path, message)."""
    try:
        split_endpoint(endpoint)
    except ValueError as exc:
        return [(tuple(path), str(exc))]
    return []


@dataclass
class TLSClientConfig:
    """``insecure``: gRPC without TLS (plain text).

    ``insecure_skip_verify``: use TLS but accept any server certificate.

    ``ca_file``: CA certificates (PEM) to verify the server with, instead of
    the system's.

    ``cert_file``: client certificate (PEM) for mutual TLS, with ``key_file``.

    ``key_file``: the client certificate's private key (PEM).
    """
    insecure: bool = False
    insecure_skip_verify: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def validate(self):
        if bool(self.cert_file) != bool(self.key_file):
            return ["cert_file and key_file must be given together"]
        return []


@dataclass
class TLSServerConfig:
    """The Collector's server TLS settings; ``client_ca_file`` turns on
    mutual TLS (clients must present a certificate signed by it).

    ``cert_file``: the server certificate (PEM).

    ``key_file``: the server certificate's private key (PEM).

    ``client_ca_file``: CA certificates (PEM) client certificates must be
    signed by; set, clients without one are refused.
    """
    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""

    def validate(self):
        if not self.cert_file or not self.key_file:
            return ["cert_file and key_file must both be set to serve TLS"]
        return []
