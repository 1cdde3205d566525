"""Entry point of the ``otelplug`` console script.

Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning the exit code.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# imported when the parser is built, so the console script starts without
# importing the sidecar, the ring and the semconv code all at once
SUBCOMMAND_MODULES = (
    "otelplug.cli.demo_cmd",
    "otelplug.cli.top_cmd",
    "otelplug.cli.run_cmd",
    "otelplug.cli.semconv_cmd",
    "otelplug.cli.components_cmd",
    "otelplug.cli.query_cmd",
    "otelplug.cli.store_cmd",
    "otelplug.cli.contract_cmd",
    "otelplug.cli.findings_cmd",
    "otelplug.cli.report_cmd",
    "otelplug.cli.alerts_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otelplug",
        description="OpenTelemetry host agent with a shared-memory core.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
