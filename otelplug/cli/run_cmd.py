"""``otelplug run`` and ``otelplug validate``: the sidecar's command line.

run: SIGTERM/SIGINT stop it after draining what is in flight and flushing
exporters; SIGHUP reloads the config without losing data (the new pipelines
start reading where the old ones committed).  A config that cannot be
loaded, built or started is logged with where it is wrong, counted in
``otelplug_config_reload_failures_total``, and the running graph is kept
(see otelplug/sidecar/reload.py).
"""
from __future__ import annotations

import logging
import os
import signal
import sys


def _load(args):
    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.default_config import DEFAULT_CONFIG
    from otelplug.sidecar.factories import Registry
    reg = Registry.default()
    if args.config:
        return load(args.config, reg)
    return load("<embedded default config>", reg, text=DEFAULT_CONFIG)


def _report(exc) -> None:
    print(f"Error: invalid configuration ({len(exc.errors)} problem"
          f"{'s' if len(exc.errors) != 1 else ''}):", file=sys.stderr)
    for e in exc.errors:
        print(f"  {e}", file=sys.stderr)


def _load_or_report(args, warn):
    """The validated config, or None after printing every error; ``warn``
    receives each warning (a print or a logger)."""
    from otelplug.sidecar.config import ConfigErrors
    try:
        cfg = _load(args)
    except ConfigErrors as exc:
        _report(exc)
        return None
    for w in cfg.warnings:
        warn(w)
    return cfg


def cmd_validate(args) -> int:
    from otelplug.sidecar.config import ConfigError, ConfigErrors
    from otelplug.sidecar.service import Service, StartError
    cfg = _load_or_report(args, lambda w: print(f"warning: {w}", file=sys.stderr))
    if cfg is None:
        return 1
    # build the graph too (constructing components starts nothing): some
    # checks need it, such as a connector's routes or two listeners on one address
    try:
        Service(cfg)
    except ConfigErrors as exc:
        _report(exc)
        return 1
    except StartError as exc:
        _report(ConfigErrors([ConfigError((), str(exc))]))
        return 1
    print(f"{cfg.source}: valid ({len(cfg.pipelines)} pipelines)")
    return 0


def cmd_run(args) -> int:
    from otelplug.sidecar.default_config import DEFAULT_CONFIG
    from otelplug.sidecar.service import Service
    from otelplug.sidecar.telemetry import Telemetry
    if args.print_default_config:
        print(DEFAULT_CONFIG, end="")
        return 0
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("otelplug.sidecar")
    from otelplug import implementation
    implementation.warn_if_not_compiled(log)
    cfg = _load_or_report(args, log.warning)
    if cfg is None:
        return 1
    signals = _SignalPipe((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
    # one registry for the process: counters survive reloads
    telemetry = Telemetry()
    failures = telemetry.counter("config_reload_failures",
                                 "SIGHUP reloads that failed; the running configuration was kept",
                                 ("reason",))
    reloads = telemetry.counter("config_reloads", "SIGHUP reloads that replaced the running graph")
    failures.add_many([(("config",), 0), (("start",), 0)])   # shown from the start, at 0
    service = Service(cfg, telemetry)
    try:
        service.start()
    except Exception as exc:
        log.error("cannot start: %s", exc)
        service.shutdown()
        return 1
    log.info("otelplug sidecar running (%s); pid %d", cfg.source, os.getpid())
    _describe(service, log)
    died = _watch_component_threads(signals)
    while (signum := signals.next()) not in (signal.SIGTERM, signal.SIGINT):
        if died:        # a component thread died: see sidecar/watchdog.py
            from otelplug.sidecar.watchdog import EXIT_COMPONENT_DIED
            log.critical("exiting with status %d: %s", EXIT_COMPONENT_DIED, died[0])
            service.shutdown()
            _exit_now(EXIT_COMPONENT_DIED)
        if signum != signal.SIGHUP:
            continue        # another library's handled signal, also written to the pipe
        service = _reload(args, service, failures, reloads, log)
        if service is None:
            return 1
    log.info("stopping: draining in-flight data")
    service.shutdown()
    log.info("stopped")
    _exit_now(0)


def _exit_now(code: int) -> None:
    """Exit without tearing the interpreter down.  Once the graph is shut
    down everything is exported, flushed and closed; what remains is
    freeing every module and object (numpy, gRPC, protobuf, ...), measured
    at ~0.45 s of CPU, which on a loaded machine held the process for
    2-3 s after "stopped" while supervisors waited.  Log handlers and the
    standard streams are flushed first."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


class _SignalPipe:
    """Signals as a stream of numbers: the interpreter's C handler writes
    each one to a pipe (``signal.set_wakeup_fd``), and the main thread
    blocks reading it.  No polling, nothing done inside a handler, and no
    lock a handler could find held (a queue or Event set from a Python
    handler can deadlock or stay unseen while the main thread blocks)."""

    def __init__(self, signums):
        self._r, w = os.pipe()
        os.set_blocking(w, False)
        self._w = w
        signal.set_wakeup_fd(w)
        for s in signums:
            signal.signal(s, lambda *a: None)   # a Python handler, so the C one records it
        self._pending = bytearray()

    def next(self) -> int:
        while not self._pending:
            self._pending += os.read(self._r, 64)
        return self._pending.pop(0)

    def post(self, n: int) -> None:
        """Wake the reader with ``n`` (0: not a signal) from any thread."""
        os.write(self._w, bytes([n]))


def _watch_component_threads(signals) -> list:
    """A list that receives the reason when a component thread dies (see
    sidecar/watchdog.py), the main loop woken with 0 at the same time."""
    from otelplug.sidecar import watchdog
    died: list = []

    def on_death(reason: str) -> None:
        died.append(reason)
        signals.post(0)
    watchdog.watch(on_death)
    return died


def _describe(service, log) -> None:
    for line in service.describe():
        log.info("  %s", line)


def _reload(args, service, failures, reloads, log):
    """The service running after a SIGHUP: the new one, or the old one
    when anything failed (logged and counted); None if nothing runs."""
    from otelplug.sidecar.config import ConfigErrors
    from otelplug.sidecar.reload import ReloadFailed, RollbackFailed, replace
    try:
        new_cfg = _load(args)
    except ConfigErrors as exc:
        failures.add(1, reason="config")
        log.error("reload: invalid configuration, keeping the running one:\n%s", exc)
        return service
    except Exception:       # a loader bug must not take the running graph down
        failures.add(1, reason="config")
        log.exception("reload: cannot load the configuration, keeping the running one")
        return service
    for w in new_cfg.warnings:
        log.warning("reload: %s", w)
    log.info("reload: starting the new pipelines")
    try:
        service = replace(service, new_cfg)
    except ReloadFailed as exc:
        failures.add(1, reason=exc.reason)
        log.error("reload: %s; keeping the running configuration", exc)
        return exc.running
    except RollbackFailed as exc:
        log.critical("reload: %s; exiting so a supervisor restarts the sidecar "
                     "(ring data waits at its committed position)", exc)
        return None
    reloads.add(1)
    log.info("reload: done")
    _describe(service, log)
    return service


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run the sidecar")
    p.add_argument("--config", help="Collector-style YAML config (default: embedded)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--print-default-config", action="store_true",
                   help="print the embedded default config and exit")
    p.set_defaults(func=cmd_run)
    v = subparsers.add_parser("validate", help="check a config without running it")
    v.add_argument("--config", help="config file (default: the embedded one)")
    v.set_defaults(func=cmd_validate)
