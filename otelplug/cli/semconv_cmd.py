"""``otelplug semconv``: resolve, check, diff and live-check registries.

Exit codes: 0 success; 1 the registry has errors, the compatibility check or
live-check failed; 2 unusable input (bad sample file, unknown option);
3 unexpected internal error (reported in one line, never a traceback).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

import yaml

from otelplug.semconv.errors import SemconvError
from otelplug.semconv.livecheck import LEVEL_RANK
from otelplug.semconv.yamlsrc import LineDict

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
FAIL_ON_CHOICES = ("violation", "improvement", "information", "none")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("semconv", help="semantic-convention registry tools (Weaver-compatible)",
                                   description="Resolve, check, diff and live-check semantic-convention registries.")
    sub = parser.add_subparsers(dest="semconv_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), EXIT_BAD_INPUT)[1])

    p = sub.add_parser("resolve", help="print the fully resolved registry")
    p.add_argument("registry", metavar="REGISTRY", help="registry folder (or a single YAML file)")
    p.add_argument("--format", choices=("json", "yaml"), default="json")
    p.set_defaults(func=_guarded(_cmd_resolve))

    p = sub.add_parser("check", help="validate a registry (and its compatibility with a baseline)")
    p.add_argument("registry", metavar="REGISTRY")
    p.add_argument("--baseline", metavar="REGISTRY", help="previous release to check backward compatibility against")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_guarded(_cmd_check))

    p = sub.add_parser("diff", help="changes between two registries")
    p.add_argument("baseline", metavar="BASELINE")
    p.add_argument("head", metavar="HEAD")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.set_defaults(func=_guarded(_cmd_diff))

    p = sub.add_parser("generate", help="generate code from a registry")
    p.add_argument("language", choices=("python",), help="target language")
    p.add_argument("registry", metavar="REGISTRY")
    p.add_argument("-o", "--output", metavar="MODULE.py", help="file to write (default: stdout)")
    p.set_defaults(func=_guarded(_cmd_generate))

    p = sub.add_parser("live-check", help="check telemetry samples against a registry")
    p.add_argument("--registry", required=True, metavar="DIR")
    p.add_argument("--input", required=True, metavar="FILE",
                   help="Weaver JSON samples or OTLP-JSON (document or JSON lines); '-' reads stdin")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--fail-on", choices=FAIL_ON_CHOICES, default="violation",
                   help="exit 1 when a finding at or above this level occurs (default: violation)")
    p.add_argument("--no-stats", action="store_true", help="do not print statistics")
    p.add_argument("--each", action="store_true",
                   help="one line per finding (default: one line per finding group)")
    p.set_defaults(func=_guarded(_cmd_live_check))


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn every expected failure into a message and an exit code."""
    from otelplug.semconv.samples import SampleError

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except SemconvError as exc:
            for diag in exc.diagnostics:
                print(diag.format(), file=sys.stderr)
            print(f"otelplug semconv: {len(exc.diagnostics)} error(s)", file=sys.stderr)
            return EXIT_FAILED
        except SampleError as exc:
            print(f"otelplug semconv: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except BrokenPipeError:
            return EXIT_OK
        except Exception as exc:  # noqa: BLE001 - a CLI must never dump a traceback
            print(f"otelplug semconv: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_INTERNAL
    return run


class _NoAliasDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Resolved attributes share objects; print them in full, not as anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# Mappings read from registry files are LineDicts (dicts that remember their
# lines); nested ones survive into the output (e.g. under ``annotations``)
# and must print as plain mappings.
_NoAliasDumper.add_representer(LineDict, yaml.SafeDumper.represent_dict)


def _dump(data: Any, fmt: str) -> None:
    if fmt == "yaml":
        sys.stdout.write(yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


# ---------------------------------------------------------------- commands

def _cmd_resolve(args: argparse.Namespace) -> int:
    from otelplug.semconv import resolve_registry
    registry = resolve_registry(args.registry)
    for warn in registry.warnings:
        print(warn.format(), file=sys.stderr)
    _dump(registry.to_dict(), args.format)
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from otelplug.semconv import load_registry, resolve_registry
    from otelplug.semconv.compat import check_compatibility

    errors, warnings, registry = [], [], None
    try:
        loaded = load_registry(args.registry)
        warnings = list(loaded.warnings)
        registry = resolve_registry(loaded)
        warnings = registry.warnings
    except SemconvError as exc:
        errors = exc.diagnostics
    compat = []
    if registry is not None and args.baseline:
        compat = check_compatibility(resolve_registry(args.baseline), registry)
    ok = not errors and not any(f.level == "violation" for f in compat)
    summary = {
        "registry": args.registry,
        "groups": len(registry.groups) if registry else 0,
        "attributes": len(registry.attributes) if registry else 0,
        "errors": len(errors), "warnings": len(warnings), "compatibility_findings": len(compat),
    }
    if args.format == "json":
        _dump({"ok": ok, "summary": summary, "errors": [d.to_dict() for d in errors],
               "warnings": [d.to_dict() for d in warnings],
               "compatibility": [f.to_dict() for f in compat]}, "json")
    else:
        for diag in list(errors) + list(warnings):
            print(diag.format())
        for f in compat:
            print(f.format())
        verdict = "OK" if ok else "FAILED"
        print(f"{verdict}: {summary['groups']} groups, {summary['attributes']} attributes, "
              f"{summary['errors']} errors, {summary['warnings']} warnings"
              + (f", {len(compat)} compatibility findings against {args.baseline}" if args.baseline else ""))
    return EXIT_OK if ok else EXIT_FAILED


def _cmd_generate(args: argparse.Namespace) -> int:
    from otelplug.semconv import resolve_registry
    from otelplug.semconv.codegen_python import GenerateError, generate_python

    registry = resolve_registry(args.registry)
    try:
        # the command as typed, relative paths only: the same registry gives
        # the same bytes wherever it is checked out
        source = generate_python(registry, command=f"otelplug semconv generate python {args.registry}"
                                 if not os.path.isabs(args.registry) else "otelplug semconv generate python")
    except GenerateError as exc:
        print(f"otelplug semconv: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    write_output(source, args.output, f"{source.count(chr(10) + '    def ') - 3} event methods")
    return EXIT_OK


def write_output(text: str, path: str | None, what: str) -> None:
    """``text`` to the file ``path`` (saying so on stderr), or to stdout."""
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {path}: {what}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _cmd_diff(args: argparse.Namespace) -> int:
    from otelplug.semconv import resolve_registry
    from otelplug.semconv.diff import diff_registries, diff_to_markdown, diff_to_text

    diff = diff_registries(resolve_registry(args.baseline), resolve_registry(args.head))
    if args.format == "json":
        _dump({"baseline": args.baseline, "head": args.head, "changes": diff}, "json")
    elif args.format == "markdown":
        sys.stdout.write(diff_to_markdown(diff, args.baseline, args.head))
    else:
        sys.stdout.write(diff_to_text(diff))
    return EXIT_OK


def _cmd_live_check(args: argparse.Namespace) -> int:
    from otelplug.semconv import resolve_registry
    from otelplug.semconv.livecheck import LiveChecker, highest_level
    from otelplug.semconv.samples import check_samples, parse_samples_text, read_samples
    from otelplug.semconv.stats import LiveCheckStats, stats_text

    registry = resolve_registry(args.registry)
    samples = (parse_samples_text(sys.stdin.read(), "<stdin>") if args.input == "-" else read_samples(args.input))
    stats = LiveCheckStats(registry)
    findings = check_samples(LiveChecker(registry, stats), samples)
    highest = highest_level(findings)
    failed = (args.fail_on != "none" and highest is not None
              and LEVEL_RANK[highest] >= LEVEL_RANK[args.fail_on])
    if args.format == "json":
        report = {"findings": [f.to_dict() for f in findings], "highest_level": highest,
                  "failed": failed, "fail_on": args.fail_on}
        if not args.no_stats:
            report["statistics"] = stats.to_dict()
        _dump(report, "json")
    else:
        if args.each:
            for f in findings:
                where = f"{f.signal_type or '-'} {f.signal_name or ''}".rstrip()
                print(f"{f.level:<11} {f.id:<44} [{where}] {f.message}")
        else:
            from otelplug.cli.findings_view import format_rows, group_findings
            for line in format_rows(group_findings(findings)):
                print(line)
        if not args.no_stats:
            for text in stats_text(stats.to_dict()):
                print(text)
        print(f"{'FAILED' if failed else 'OK'}: highest level {highest or 'none'} (fail-on {args.fail_on})")
    return EXIT_FAILED if failed else EXIT_OK
