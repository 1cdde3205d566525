"""Alert notifications: Alertmanager's API v2 and webhooks in
Alertmanager's webhook JSON format.

As Prometheus does, a firing alert is sent with ``endsAt`` a few
evaluation/resend intervals ahead and resent while it fires, so
Alertmanager resolves it by itself if the sidecar goes away; a resolved
alert is sent once with ``endsAt`` at its resolution time.

Each target has a sender thread holding the newest payload of every alert
not yet delivered; when the target is down it retries with exponential
backoff, counting each failure, and a newer state of the same alert
replaces the older one instead of queueing behind it.
"""
from __future__ import annotations

import json
import logging
import threading

from otelplug.analytics.alerts import Alert, iso

from ...helpers.exporter import Retryable
from ...helpers.http_client import KeepAliveClient

log = logging.getLogger("otelplug.sidecar")


def alertmanager_alert(a: Alert, now: float, valid_for_s: float, external_url: str) -> dict:
    ends = a.resolved_at if a.state == "resolved" else now + valid_for_s
    return {"labels": dict(a.labels), "annotations": dict(a.annotations),
            "startsAt": iso(a.fired_at or a.active_since), "endsAt": iso(ends),
            "generatorURL": f"{external_url}/api/alerts/{a.id}"}


def webhook_message(alerts: list[dict], receiver: str, external_url: str) -> dict:
    """The body Alertmanager's webhook receiver posts (version 4)."""
    labels = [x["labels"] for x in alerts]
    common = {k: v for k, v in labels[0].items() if all(lab.get(k) == v for lab in labels)} if labels else {}
    anns = [x["annotations"] for x in alerts]
    common_ann = {k: v for k, v in anns[0].items() if all(a.get(k) == v for a in anns)} if anns else {}
    status = "firing" if any(x["status"] == "firing" for x in alerts) else "resolved"
    return {"version": "4", "groupKey": json.dumps(common, sort_keys=True), "truncatedAlerts": 0,
            "status": status, "receiver": receiver, "groupLabels": {},
            "commonLabels": common, "commonAnnotations": common_ann,
            "externalURL": external_url, "alerts": alerts}


class Sender:
    """One target: ``kind`` alertmanager (POST {endpoint}/api/v2/alerts) or
    webhook (POST {endpoint})."""

    def __init__(self, kind: str, endpoint: str, timeout: float, telemetry, ext_id: str,
                 initial_backoff: float, max_backoff: float, external_url: str):
        self.kind, self.endpoint, self.timeout = kind, endpoint.rstrip("/"), timeout
        self.external_url = external_url
        self.path = "/api/v2/alerts" if kind == "alertmanager" else ""
        self.client = KeepAliveClient(self.endpoint, None)
        base = self.client.url.path.rstrip("/")
        self.path = (base + self.path) or "/"
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.pending: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stop = threading.Event()
        lab = {"extension": ext_id, "target": self.endpoint}
        self._lab = lab
        self._sent = telemetry.counter("alerts_notifications_sent", "alerts delivered to a target",
                                       tuple(lab))
        self._failed = telemetry.counter("alerts_notifications_failed",
                                         "failed deliveries to a target (retried with backoff)", tuple(lab))
        self._dropped = telemetry.counter("alerts_notifications_dropped",
                                          "alerts a target refused for good (HTTP 4xx)", tuple(lab))
        self.failures = 0
        self.delivered = 0
        self.thread = threading.Thread(target=self._run, name=f"alerts-{kind}", daemon=True)

    def start(self) -> "Sender":
        self.thread.start()
        return self

    def offer(self, items: list[tuple[str, dict]]) -> None:
        with self.lock:
            for aid, payload in items:
                self.pending[aid] = payload
        self.wake.set()

    def _body(self, batch: list[dict]) -> bytes:
        if self.kind == "alertmanager":
            return json.dumps(batch).encode()
        alerts = [{"status": "resolved" if x.get("_state") == "resolved" else "firing",
                   "labels": x["labels"], "annotations": x["annotations"], "startsAt": x["startsAt"],
                   "endsAt": x["endsAt"] if x.get("_state") == "resolved" else "0001-01-01T00:00:00Z",
                   "generatorURL": x["generatorURL"], "fingerprint": x["_id"]} for x in batch]
        return json.dumps(webhook_message(alerts, "otelplug", self.external_url)).encode()

    def _run(self) -> None:
        backoff = self.initial_backoff
        while not self.stop.is_set():
            self.wake.wait(1.0)
            self.wake.clear()
            with self.lock:
                snapshot = dict(self.pending)
            if not snapshot:
                continue
            batch = [{k: v for k, v in p.items() if self.kind == "webhook" or not k.startswith("_")}
                     for p in snapshot.values()]
            try:
                self.client.export(self.path, self._body(batch), {"Content-Type": "application/json"},
                                   self.timeout)
            except Retryable as exc:
                self.failures += 1
                self._failed.add(len(batch), **self._lab)
                log.warning("alerts: %s %s: %s; retrying in %.1fs", self.kind, self.endpoint, exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                self.wake.set()
                continue
            except Exception as exc:       # Permanent: the target refuses this payload
                self._dropped.add(len(batch), **self._lab)
                log.error("alerts: %s %s refused %d alerts: %s", self.kind, self.endpoint, len(batch), exc)
            else:
                self.delivered += len(batch)
                self._sent.add(len(batch), **self._lab)
            backoff = self.initial_backoff
            with self.lock:
                for aid, p in snapshot.items():
                    if self.pending.get(aid) is p:
                        del self.pending[aid]

    def shutdown(self) -> None:
        self.stop.set()
        self.wake.set()
        self.thread.join(timeout=5)
