"""``otelplug report performance|usage|health``: a report over
``--since``..``--until`` from the telemetry store (``--store``) or
OTLP-JSON files (``--input``, the file exporter's output),
optionally with a running sidecar's API for drops, sampling and alerts;
writes JSON (stdout or ``--json``) and a self-contained HTML file
(``--html``).  Exit 0, or 2 with a message for bad input."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="performance, usage or health report (JSON and HTML)",
                              description="Performance, usage or health report over a time range.")
    p.add_argument("kind", choices=("performance", "usage", "health"))
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", action="append", metavar="FILE",
                     help="OTLP-JSON lines written by the file exporter (repeatable)")
    src.add_argument("--store", metavar="URL", help="the telemetry store (duckdb:///path or postgresql://...)")
    p.add_argument("--since", default="now-1h", help="unix seconds, ISO 8601 or now-<N>s|m|h|d (default now-1h)")
    p.add_argument("--until", default="now")
    p.add_argument("--service")
    p.add_argument("--slo", type=float, default=0.999, help="availability objective for the error budget")
    p.add_argument("--api", metavar="URL", help="a running sidecar's API, for drops, sampling and alerts")
    p.add_argument("--token", help="its bearer token (default: $OTELPLUG_API_TOKEN)")
    p.add_argument("--json", metavar="FILE", help="write the JSON here (default: stdout)")
    p.add_argument("--html", metavar="FILE", help="write the HTML report here")
    p.set_defaults(func=run)


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()


def run(args) -> int:
    from otelplug.report import compute, html
    from otelplug.report.source import SourceError, from_store, read
    from otelplug.sidecar.extensions.api.params import ParamError, parse_time

    try:
        since, until = parse_time(args.since), parse_time(args.until)
    except ParamError as exc:
        print(f"otelplug report: --since/--until: {exc}", file=sys.stderr)
        return 2
    if since >= until:
        print("otelplug report: --since must be before --until", file=sys.stderr)
        return 2
    if not 0 < args.slo < 1:
        print("otelplug report: --slo must be between 0 and 1 (e.g. 0.999)", file=sys.stderr)
        return 2
    try:
        # the previous period too: performance compares against it
        data = from_store(args.store, since - (until - since), until) if args.store else read(args.input)
    except SourceError as exc:
        print(f"otelplug report: {exc}", file=sys.stderr)
        return 2
    status = alerts = None
    if args.api:
        from .api_client import ApiClientError, get_json
        try:
            status = get_json(args.api, "/api/v1/status", args.token)
            alerts = status.get("alerts")
        except ApiClientError as exc:
            print(f"otelplug report: --api: {exc}", file=sys.stderr)
            return 2
    if args.kind == "performance":
        body = compute.performance(data, since, until, args.service)
    elif args.kind == "usage":
        body = compute.usage(data, since, until, args.service, status)
    else:
        body = compute.health(data, since, until, args.service, args.slo, alerts)
    report = {"kind": args.kind, "since": since, "until": until, "since_iso": _iso(since),
              "until_iso": _iso(until), "service": args.service, "report": body}
    text = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(html.render(args.kind, report))
    return 0
