"""``otelplug demo``: the README's main job.

By default, adapter processes (web, job and GPU workers) produce spans, logs
and metrics through the OpenTelemetry SDK and otelplug's processors, the
sidecar runs the embedded default config, and a summary accounts for every
item.  ``--ring-only`` runs the lower-level ring demo instead.
"""
from __future__ import annotations


def run(args) -> int:
    if args.ring_only:
        from otelplug.demo import ring_demo
        return ring_demo.run(args)
    from otelplug.demo.app import run as run_demo
    return run_demo(args)


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run adapters and the sidecar, with live progress")
    p.add_argument("--seconds", type=float, default=5.0, metavar="S", help="how long to produce (default 5)")
    p.add_argument("--adapters", type=int, default=4, metavar="N",
                   help="adapter processes, cycling web, job, gpu (default 4)")
    p.add_argument("--rate", type=float, default=500.0, metavar="R",
                   help="work items per second per adapter (default 500; 0 = as fast as possible)")
    p.add_argument("--output", default="otelplug-demo-output", metavar="DIR",
                   help="where the file exporters write (default ./otelplug-demo-output)")
    p.add_argument("--channel", metavar="NAME", help="ring channel (default: a private demo-<pid>)")
    p.add_argument("--serve", action="store_true",
                   help="after the run, keep the sidecar and its status page up until Ctrl-C")
    p.add_argument("--ring-only", action="store_true",
                   help="the ring-level demo: raw records, no SDK, no sidecar")
    p.add_argument("--producers", type=int, default=4, metavar="N", help="--ring-only: producer processes")
    p.add_argument("--record-size", type=int, default=200, metavar="B", help="--ring-only: record size")
    p.set_defaults(func=run)
