"""Component threads that die: never quietly.

A receiver, exporter or processor runs its work on threads.  If one of them
ends with an uncaught exception, the data it was moving stops moving while
everything else looks fine.  ``threading.excepthook`` (the standard library's
hook for exactly this) reports every such death here; each running Service
that watches is told, marks itself failed, turns its health_check extension
unhealthy, and ``otelplug run`` then drains what it can and exits with
``EXIT_COMPONENT_DIED`` so that a supervisor (systemd, Kubernetes) restarts
the process.  Restarting the thread in-process would re-run the same state
into the same bug; a fresh process re-reads the rings from their committed
positions, and the codecs skip and count the records that kill decoders.
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("otelplug.sidecar")

#: exit status of ``otelplug run`` after a component thread died (EX_SOFTWARE)
EXIT_COMPONENT_DIED = 70

_watchers: list = []
_lock = threading.Lock()
_previous_hook = None


def _hook(args) -> None:
    if args.exc_type is SystemExit:
        return
    name = getattr(args.thread, "name", "?")
    reason = f"thread {name!r} died: {args.exc_type.__name__}: {args.exc_value}"
    log.critical("component %s", reason,
                 exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
    with _lock:
        watchers = list(_watchers)
    for w in watchers:
        try:
            w(reason)
        except Exception:
            log.exception("watchdog: reporting %s failed", reason)


def watch(on_death) -> None:
    """Call ``on_death(reason)`` whenever a thread dies of an exception."""
    global _previous_hook
    with _lock:
        if threading.excepthook is not _hook:
            _previous_hook = threading.excepthook
            threading.excepthook = _hook
        if on_death not in _watchers:     # a graph started in two steps (reload)
            _watchers.append(on_death)


def unwatch(on_death) -> None:
    global _previous_hook
    with _lock:
        if on_death in _watchers:
            _watchers.remove(on_death)
        if not _watchers and threading.excepthook is _hook and _previous_hook is not None:
            threading.excepthook = _previous_hook
            _previous_hook = None
