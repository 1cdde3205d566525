"""``otelplug findings``: a running sidecar's semantic-convention findings,
grouped (from its HTTP API, ``GET /api/v1/findings``).  Exit 0 with the
view, 1 when the API refuses or cannot be reached (the reason printed)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from .api_client import ApiClientError, get_json
from .findings_view import format_rows


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("findings", help="a running sidecar's semantic-convention findings, grouped",
                              description="Semantic-convention findings of a running sidecar, one line per group.")
    p.add_argument("--url", default=os.environ.get("OTELPLUG_API_URL", "http://127.0.0.1:13180"),
                   help="the api extension's address (default: $OTELPLUG_API_URL or http://127.0.0.1:13180)")
    p.add_argument("--token", default=None, help="bearer token (default: $OTELPLUG_API_TOKEN)")
    p.add_argument("--level", choices=("violation", "improvement", "information"))
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args) -> int:
    params = {"limit": args.limit}
    if args.level:
        params["level"] = args.level
    try:
        body = get_json(args.url, "/api/v1/findings", args.token, params)
    except ApiClientError as exc:
        print(f"otelplug findings: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(body, indent=2))
    else:
        for line in format_rows(body["findings"]):
            print(line)
    return 0
