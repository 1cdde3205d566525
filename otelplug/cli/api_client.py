"""Talking to a sidecar's HTTP API from the CLI (findings, top)."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request


class ApiClientError(Exception):
    pass


def get_json(base_url: str, path: str, token: str | None = None, params: dict | None = None,
             timeout: float = 5.0):
    token = token or os.environ.get("OTELPLUG_API_TOKEN")
    url = base_url.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        try:
            why = json.loads(exc.read()).get("error")
        except ValueError:
            why = exc.reason
        raise ApiClientError(f"{url}: {exc.code} {why}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ApiClientError(f"{url}: cannot connect: {getattr(exc, 'reason', exc)}") from None
