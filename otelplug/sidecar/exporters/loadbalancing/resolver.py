"""Where the backends are: a fixed list, or the addresses a DNS name
resolves to, looked up again every ``interval`` (the Collector's static and
dns resolvers)."""
from __future__ import annotations

import logging
import socket
import threading

log = logging.getLogger("otelplug.sidecar")

DEFAULT_PORT = 4317


def with_port(host: str, port: int = DEFAULT_PORT) -> str:
    """``host`` or ``host:port`` (IPv6 in brackets) as ``host:port``."""
    if host.startswith("["):
        return host if "]:" in host else f"{host}:{port}"
    if host.count(":") == 1:
        return host
    if ":" in host:                       # a bare IPv6 address
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def lookup(hostname: str, timeout: float) -> list[str]:
    """The addresses of ``hostname`` (the system resolver: /etc/hosts, DNS).
    The resolver has no timeout of its own; it runs on the resolver thread,
    which a slow lookup only delays."""
    infos = socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


class DNSResolver:
    def __init__(self, hostname: str, port: int | None, interval: float, timeout: float, on_change,
                 on_result, resolve=lookup):
        self.hostname, self.port = hostname, port
        self.interval, self.timeout = interval, timeout
        self._on_change, self._on_result = on_change, on_result
        self._resolve = resolve
        self._stop = threading.Event()
        self._thread = None

    def resolve_once(self) -> None:
        try:
            addrs = self._resolve(self.hostname, self.timeout)
        except OSError as exc:
            # keep the last known backends: a failed lookup is not an empty set
            log.warning("loadbalancing: resolving %r failed: %s", self.hostname, exc)
            self._on_result(False)
            return
        self._on_result(True)
        # as the Collector: address:port when a port is configured, else the
        # bare address (the ring hashes these names)
        self._on_change([with_port(a, self.port) if self.port else a for a in addrs])

    def start(self) -> None:
        self.resolve_once()
        self._thread = threading.Thread(target=self._loop, name=f"lb-dns-{self.hostname}",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.resolve_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
