"""The demo's status page: the api extension attached to the demo's
running service on a free 127.0.0.1 port, with a one-time admin token in
the page URL (the URL is printed only to the demo's own terminal)."""
from __future__ import annotations

import secrets
import signal
import threading


def start(service):
    """(api extension, page URL)."""
    from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
    from otelplug.sidecar.extensions.api import Api
    from otelplug.sidecar.extensions.api.config import ApiConfig, TokenConfig

    token = secrets.token_urlsafe(18)
    cfg = ApiConfig(endpoint="127.0.0.1:0", anonymous_public=True,
                    tokens=[TokenConfig(name="demo", value=token, scopes=["admin"])])
    api = Api(CreateSettings(ComponentID("api"), Kind.EXTENSION, None, service.telemetry, service), cfg)
    api.start(service)
    api.ready(True)
    return api, f"{api.url}/#token={token}"


def serve_until_interrupted(url: str) -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"otelplug demo: serving the status page at {url} until Ctrl-C", flush=True)
    while not stop.wait(0.5):
        pass
