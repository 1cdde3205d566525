"""Replacing the running graph with one built from a new config, never
leaving the sidecar without one.

1. The new graph is built (every component constructed) while the old one
   keeps running.  Nothing is bound yet.
2. Every listener the new graph wants that the old one does not hold is
   probed: a port taken by another process fails the reload here, before
   anything was touched.
3. The new graph starts next to the old one, except the components that
   want something the old graph holds (a port, a shm channel, a storage
   directory, an output file) and whatever feeds them.  Self-metrics on an
   unchanged address keep their socket (the registry is shared).
4. The old graph stops: receivers first, in-flight data drained and
   exported, rings left at their committed positions.
5. The deferred components start.  If one fails (say another process took
   the port in the instant it was free), the new graph is stopped and the
   old config is started again: a rollback, not an exit.

Any failure raises ReloadFailed carrying the service that is running now.
"""
from __future__ import annotations

import logging
import socket

from .config import ConfigErrors
from .service import Service


log = logging.getLogger("otelplug.sidecar")


class ReloadFailed(Exception):
    """``reason`` is "config" (the config is wrong) or "start" (it could
    not be started here and now)."""

    def __init__(self, message: str, running: Service, reason: str = "start"):
        super().__init__(message)
        self.running = running
        self.reason = reason


class RollbackFailed(Exception):
    """Neither the new nor the old config could start: nothing runs."""


def _probe_listen(address: str) -> None:
    """Raise OSError if ``host:port`` cannot be bound right now (as the
    servers bind: SO_REUSEADDR, so only a live listener conflicts)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or int(port) == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))


def replace(old: Service, new_config) -> Service:
    """The running service after switching to ``new_config``; raises
    ReloadFailed (old graph still running, or restored) or RollbackFailed."""
    try:
        new = Service(new_config, old.telemetry)
    except ConfigErrors as exc:   # graph-dependent checks some components make
        raise ReloadFailed(f"invalid configuration:\n{exc}", old, "config") from exc
    except Exception as exc:      # StartError names the component
        raise ReloadFailed(str(exc), old) from exc
    held = old.claims()
    wanted = new.claims()
    for res, label in wanted.items():
        if res.startswith("tcp ") and res not in held:
            address = res[4:]
            try:
                _probe_listen(address)
            except OSError as exc:
                raise ReloadFailed(f"{label}: cannot listen on {address}: {exc.strerror or exc}",
                                   old) from None
    defer = new.depends_on_any(new.claiming(held))
    metrics = new.metrics_address()
    if metrics and metrics == old.metrics_address():
        new.take_metrics_server(old)
    elif metrics and f"tcp {metrics}" in held:
        defer.add("metrics")      # the old graph has a component on that port
    waiting = sorted({new.label(c) for c in new.components() if id(c) in defer})
    if waiting:
        log.info("reload: after the previous pipelines stop (they hold what these need): %s",
                 ", ".join(waiting))
    try:
        new.start(defer=defer)
    except Exception as exc:
        _stop(new, old)
        raise ReloadFailed(str(exc), old) from exc
    log.info("reload: stopping the previous pipelines")
    old.shutdown()
    try:
        new.start()
    except Exception as exc:
        try:
            restored = Service(old.config, old.telemetry)
        except Exception as exc2:
            new.shutdown()
            raise RollbackFailed(f"{exc}; rebuilding the previous configuration failed: {exc2}") from exc2
        _stop(new, restored)
        try:
            restored.start()
        except Exception as exc2:
            restored.shutdown()
            raise RollbackFailed(f"{exc}; restoring the previous configuration failed too: {exc2}") from exc2
        raise ReloadFailed(f"{exc}; the previous configuration was restored", restored) from exc
    return new


def _stop(new: Service, keeper: Service) -> None:
    """Stop a new graph that did not make it, handing the metrics server
    (when on the same address) to the graph that stays."""
    if keeper.metrics_server is None and new.metrics_address() == keeper.metrics_address():
        keeper.take_metrics_server(new)
    new.shutdown()
