"""``otelplug run`` and ``otelplug validate``: the sidecar's command line.

run: SIGTERM/SIGINT stop it after draining what is in flight and flushing
exporters; SIGHUP reloads the config without losing data (the new pipelines
start reading where the old ones committed; a config with errors is
reported and the running one kept).
"""
from __future__ import annotations

import logging
import signal
import sys
import threading


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
    cfg = _load_or_report(args, lambda w: print(f"warning: {w}", file=sys.stderr))
    if cfg is None:
        return 1
    print(f"{cfg.source}: valid ({len(cfg.pipelines)} pipelines)")
    return 0


def cmd_run(args) -> int:
    from otelplug.sidecar.config import ConfigErrors
    from otelplug.sidecar.default_config import DEFAULT_CONFIG
    from otelplug.sidecar.service import Service
    if args.print_default_config:
        print(DEFAULT_CONFIG, end="")
        return 0
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("otelplug.sidecar")
    cfg = _load_or_report(args, log.warning)
    if cfg is None:
        return 1
    stop = threading.Event()
    reload_ = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    signal.signal(signal.SIGHUP, lambda *a: reload_.set())
    service = Service(cfg)
    try:
        service.start()
    except Exception as exc:
        log.error("cannot start: %s", exc)
        service.shutdown()
        return 1
    log.info("otelplug sidecar running (%s); pid %d", cfg.source, __import__("os").getpid())
    while not stop.is_set():
        if reload_.wait(0.2):
            reload_.clear()
            try:
                new_cfg = _load(args)
            except ConfigErrors as exc:
                log.error("reload: invalid configuration, keeping the running one:\n%s", exc)
                continue
            log.info("reload: draining the running pipelines")
            # stop reading, drain and flush, then start the new graph: rings
            # keep whatever was not committed, so nothing is lost
            service.shutdown()
            service = Service(new_cfg)
            service.start()
            log.info("reload: done")
    log.info("stopping: draining in-flight data")
    service.shutdown()
    log.info("stopped")
    return 0


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
