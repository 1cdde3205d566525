"""api: the sidecar's HTTP API and status page (127.0.0.1:13180 by default).

``/api/v1/openapi.json`` documents every endpoint; the status page is at
``/``.  Config: see config.py.  What other components contribute (alerts,
service graph, store) is looked up from the running service: providers.py.
"""
from __future__ import annotations

import logging
import math
import time

from ...component import Factory, Kind
from . import public, status
from .auth import Authenticator
from .config import ApiConfig
from .sampler import Sampler

log = logging.getLogger("otelplug.sidecar")


class Api:
    def __init__(self, settings, config: ApiConfig):
        self.config = config
        self.id = str(settings.id)
        self.telemetry = settings.telemetry
        self.service = None
        self.server = None
        self.started = False
        self.started_at = time.time()
        self.sampler = Sampler(self.telemetry, float(config.sample_interval))
        self.auth = None

    def claims(self) -> list[str]:
        return [f"tcp {self.config.endpoint}"]

    @property
    def url(self) -> str | None:
        return f"{self.server.scheme}://{self.server.address}" if self.server else None

    def start(self, host) -> None:
        from .app import build_app
        from .server import ThreadedServer

        self.service = host
        self.auth = Authenticator(self.config)
        self.sampler.extra.append(public.snapshot_services(host))
        tls = self.config.tls
        self.server = ThreadedServer(build_app(self), self.config.endpoint, tls.cert_file, tls.key_file).start()
        self.sampler.start()
        log.info("api: serving the HTTP API and status page at %s/", self.url)

    def ready(self, ok: bool) -> None:
        self.started = ok

    def shutdown(self) -> None:
        self.sampler.stop()
        if self.server:
            self.server.shutdown()

    # -- what handlers use -------------------------------------------------
    def status(self) -> dict:
        out = status.build(self.service, self.telemetry, self.sampler, self.config,
                           self.started_at, self.started)
        # the newest chart samples (the last 2 s, more than one poll
        # interval of the page): a polling page needs /series only once
        out["latest_samples"] = self.chart_samples(max(1, math.ceil(2.0 / float(self.config.sample_interval))))
        return out

    def chart_samples(self, last: int) -> list[dict]:
        """Per-interval rates between consecutive samples, for the charts."""
        snaps = self.sampler.series(last + 1)
        out = []
        for a, b in zip(snaps, snaps[1:]):
            dt = max(b["t"] - a["t"], 1e-9)
            row = {"t": b["t"], "spans_per_second": (b["accepted_spans"] - a["accepted_spans"]) / dt,
                   "exporters": {}, "services": {}, "rings": {}}
            for ring, (pending, dropped) in b["rings"].items():
                before = a["rings"].get(ring, [0.0, dropped])[1]
                row["rings"][ring] = {"pending_bytes": pending, "dropped_per_second": max(dropped - before, 0) / dt}
            for eid in b["sent_spans"].keys() | b["send_failed_spans"].keys():
                row["exporters"][eid] = {
                    w: sum(b[f"{w}_{x}"].get(eid, 0) - a[f"{w}_{x}"].get(eid, 0)
                           for x in ("spans", "metric_points", "log_records")) / dt
                    for w in ("sent", "send_failed")}
                row["exporters"][eid]["queue"] = b["queue"].get(eid, 0)
            for name, now in b.get("services", {}).items():
                prev = a.get("services", {}).get(name)
                calls = now["calls"] - (prev["calls"] if prev else 0)
                errs = now["errors"] - (prev["errors"] if prev else 0)
                bk = now["buckets"] - prev["buckets"] if prev is not None and \
                    len(prev["buckets"]) == len(now["buckets"]) else now["buckets"]
                row["services"][name] = {"throughput_per_second": calls / dt,
                                         "error_rate": errs / calls if calls > 0 else 0.0,
                                         "p95_ms": public._p95(bk, now["bounds_ms"])}
            out.append(row)
        return out


factory = Factory("api", Kind.EXTENSION, ApiConfig, Api)
