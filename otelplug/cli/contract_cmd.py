"""``otelplug contract``: the adapter telemetry contract in CI.

* ``check --baseline OLD [REGISTRY]``: the registry is valid and backward
  compatible with ``OLD`` (what ``otelplug semconv check --baseline`` does);
* ``samples --registry R``: valid sample events as OTLP-JSON lines, from the
  registry's examples and constraints;
* ``report --registry R --samples FILE --output contract_report.json``:
  per-adapter and per-event results on recorded events, ``all_adapters_valid``.

Exit codes (for CI): 0 valid; 1 the contract is broken (registry errors,
incompatible change, invalid events, no events at all); 2 unusable input
(unreadable or malformed samples, a registry that cannot give samples);
3 internal error.
"""
from __future__ import annotations

import argparse
import json
import sys

from otelplug.cli import semconv_cmd
from otelplug.cli.semconv_cmd import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, _guarded


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("contract", help="the telemetry contract in CI (compatibility, samples, report)",
                                   description="Check adapters against the telemetry contract of a registry.")
    sub = parser.add_subparsers(dest="contract_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), EXIT_BAD_INPUT)[1])

    p = sub.add_parser("check", help="the registry is valid and backward compatible with a baseline")
    p.add_argument("registry", metavar="REGISTRY", nargs="?", default="semconv",
                   help="current registry (default: semconv)")
    p.add_argument("--baseline", required=True, metavar="OLD_REGISTRY", help="the previous release of the registry")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_guarded(semconv_cmd._cmd_check))

    p = sub.add_parser("samples", help="valid sample events (OTLP-JSON lines)")
    p.add_argument("--registry", required=True, metavar="R")
    p.add_argument("--output", "-o", metavar="FILE", help="file to write (default: stdout)")
    p.set_defaults(func=_guarded(_cmd_samples))

    p = sub.add_parser("report", help="per-adapter, per-event contract report on recorded events")
    p.add_argument("--registry", required=True, metavar="R")
    p.add_argument("--samples", required=True, metavar="FILE",
                   help="OTLP-JSON logs: one document or JSON lines (the file exporter's output); '-' reads stdin")
    p.add_argument("--output", "-o", metavar="FILE", help="write the JSON report there (default: contract_report.json)",
                   default="contract_report.json")
    p.set_defaults(func=_guarded(_cmd_report))


def _cmd_samples(args: argparse.Namespace) -> int:
    from otelplug.semconv import resolve_registry
    from otelplug.semconv.contract import ContractError, generate_samples

    registry = resolve_registry(args.registry)
    try:
        lines = list(generate_samples(registry))
    except ContractError as exc:
        print(f"otelplug contract: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    semconv_cmd.write_output("".join(line + "\n" for line in lines), args.output, f"{len(lines)} sample events")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from otelplug.semconv import resolve_registry
    from otelplug.semconv.contract import contract_report, report_text
    from otelplug.semconv.samples import SampleError

    registry = resolve_registry(args.registry)
    if args.samples == "-":
        text, source = sys.stdin.read(), "<stdin>"
    else:
        try:
            with open(args.samples, encoding="utf-8") as handle:
                text, source = handle.read(), args.samples
        except OSError as exc:
            raise SampleError(f"{args.samples}: cannot read samples: {exc.strerror}") from None
    report = contract_report(registry, text, source)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    for line in report_text(report):
        print(line)
    print(f"report: {args.output}")
    return EXIT_OK if report["all_adapters_valid"] else EXIT_FAILED
