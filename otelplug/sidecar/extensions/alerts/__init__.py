"""alerts: runs the rules of ``analytics`` connectors and manages their
alerts (pending -> firing -> resolved, acknowledgements, silences), keeps
the state in ``state_file`` across restarts, notifies Alertmanagers (API
v2) and webhooks, and serves a loopback control endpoint for
``otelplug alerts``.

```yaml
extensions:
  alerts:
    state_file: /var/lib/otelplug/alerts.json
    endpoint: 127.0.0.1:13141
    alertmanagers: [{endpoint: "http://127.0.0.1:9093"}]
    webhooks: [{endpoint: "http://127.0.0.1:5001/hook"}]
```

Other components (the sidecar's HTTP API) reach the alerts through
``alert_control(host)``: the ``AlertControl`` interface of
otelplug/analytics/alerts.py (list_alerts, ack, resolve, silence, silences,
rules_status), the same calls the control endpoint makes.

A SIGHUP reload builds a new extension; it takes over the running engine
(same ``state_file``, or same id without one), so alert state, acks and
silences carry over while the rules are replaced by the new config's.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from otelplug.analytics.alerts import AlertControl, AlertEngine

from ...component import Factory, Kind
from ...config.decode import Duration
from .control import ControlServer
from .notify import Sender, alertmanager_alert

log = logging.getLogger("otelplug.sidecar")
_engines: dict[str, AlertEngine] = {}
_engines_lock = threading.Lock()


@dataclass
class TargetConfig:
    """A notification target: ``endpoint`` (an Alertmanager's base URL, or
    a webhook's full URL) and a request ``timeout``."""
    endpoint: str = ""
    """An Alertmanager's base URL, or a webhook's full URL."""
    timeout: Duration = Duration(5.0)
    """Per request."""

    def validate(self):
        if not self.endpoint.startswith(("http://", "https://")):
            return [(("endpoint",), f"must be an http:// or https:// URL, got {self.endpoint!r}")]
        return []


@dataclass
class AlertsConfig:
    """``state_file``: where alerts, acks and silences are kept (default
    ``$OTELPLUG_OUTPUT_DIR/alerts-state.json``; empty without that
    variable: kept in memory only).  ``endpoint``: the loopback control
    endpoint (empty: none).  Rules are evaluated every
    ``evaluation_interval``; firing alerts are resent every
    ``resend_interval``; failed deliveries are retried after
    ``retry_initial_interval``, doubling up to ``retry_max_interval``."""
    state_file: str = ""
    """Alerts, acks and silences across restarts (default $OTELPLUG_OUTPUT_DIR/alerts-state.json)."""
    endpoint: str = "127.0.0.1:13141"
    """The loopback control endpoint of ``otelplug alerts`` (empty: none)."""
    evaluation_interval: Duration = Duration(1.0)
    """How often the rules are evaluated."""
    resend_interval: Duration = Duration(60.0)
    """How often a firing alert is sent again."""
    retain_resolved: Duration = Duration(3600.0)
    """How long resolved alerts stay listed."""
    restore_grace: Duration = Duration(60.0)
    """After a restart, alerts restored from ``state_file`` are not resolved for this long (the rules' windows start empty)."""
    alertmanagers: list[TargetConfig] = field(default_factory=list)
    """Alertmanagers to post alerts to (API v2)."""
    webhooks: list[TargetConfig] = field(default_factory=list)
    """Webhooks to post Alertmanager's webhook JSON to."""
    retry_initial_interval: Duration = Duration(0.5)
    """First wait after a failed delivery; doubles each time."""
    retry_max_interval: Duration = Duration(30.0)
    """Longest wait between delivery attempts."""
    external_url: str = "http://127.0.0.1"
    """Base of the alerts' ``generatorURL``."""

    def validate(self):
        errs = []
        if self.evaluation_interval <= 0:
            errs.append((("evaluation_interval",), "must be positive"))
        if self.resend_interval <= 0:
            errs.append((("resend_interval",), "must be positive"))
        if not 0 < self.retry_initial_interval <= self.retry_max_interval:
            errs.append((("retry_initial_interval",), "must be positive and at most retry_max_interval"))
        if self.endpoint:
            host, sep, port = self.endpoint.rpartition(":")
            if not sep or not port.isdigit():
                errs.append((("endpoint",), f"must be host:port, got {self.endpoint!r}"))
        return errs

    def resolved_state_file(self) -> str:
        if self.state_file:
            return self.state_file
        out = os.environ.get("OTELPLUG_OUTPUT_DIR")
        return os.path.join(out, "alerts-state.json") if out else ""


def shared_engine(key: str, state_file: str, retain_s: float, grace_s: float = 0.0) -> AlertEngine:
    """The engine for this state file (or extension id): created once per
    process, taken over by the extension a reload creates."""
    with _engines_lock:
        eng = _engines.get(key)
        if eng is None:
            eng = _engines[key] = AlertEngine(state_file or None, retain_resolved_s=retain_s,
                                              restore_grace_s=grace_s)
        eng.retain_resolved_s = retain_s
        return eng


class Alerts:
    def __init__(self, settings, config: AlertsConfig):
        self.id = str(settings.id)
        self.config = config
        state_file = config.resolved_state_file()
        if not state_file:
            log.warning("extension %s: no state_file and no $OTELPLUG_OUTPUT_DIR: alert state is "
                        "kept in memory only and lost on restart", self.id)
        self.engine = shared_engine(state_file or f"id:{self.id}", state_file, float(config.retain_resolved),
                                    float(config.restore_grace))
        self.events = collections.deque(maxlen=1000)
        from ...telemetry import Telemetry
        self.telemetry = settings.telemetry if settings.telemetry is not None else Telemetry()
        self._events = self.telemetry.counter("alerts_state_changes", "alert state changes",
                                              ("extension", "to"))
        self.senders = []
        self._sinks = []
        self.server = None
        self._stop = threading.Event()
        self._thread = None

    def claims(self) -> list[str]:
        return [f"tcp {self.config.endpoint}"] if self.config.endpoint else []

    def add_sink(self, fn) -> None:
        """``fn(event)`` for every event (connectors turn them into log records)."""
        self._sinks.append(fn)

    def remove_sink(self, fn) -> None:
        if fn in self._sinks:
            self._sinks.remove(fn)

    def _on_event(self, ev: dict) -> None:
        self.events.append(ev)
        if ev.get("event") == "alert.state_change":
            self._events.add(1, extension=self.id, to=ev.get("alert.to"))
        for fn in list(self._sinks):
            try:
                fn(ev)
            except Exception:
                log.exception("extension %s: an event sink failed", self.id)

    def start(self, host) -> None:
        c = self.config
        self.engine.on_event = self._on_event
        args = (self.telemetry, self.id, float(c.retry_initial_interval), float(c.retry_max_interval),
                c.external_url)
        self.senders = [Sender("alertmanager", t.endpoint, float(t.timeout), *args).start()
                        for t in c.alertmanagers]
        self.senders += [Sender("webhook", t.endpoint, float(t.timeout), *args).start() for t in c.webhooks]
        if c.endpoint:
            host_part = c.endpoint.rpartition(":")[0].strip("[]")
            if host_part not in ("127.0.0.1", "localhost", "::1"):
                # it acknowledges, resolves and silences without authentication
                log.warning("extension %s: the alerts control endpoint %s is not on loopback: anyone "
                            "who can reach it can acknowledge, resolve and silence alerts", self.id, c.endpoint)
            self.server = ControlServer(c.endpoint, self.engine, self.events).start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.id}-eval", daemon=True)
        self._thread.start()

    def evaluate_and_notify(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.engine.evaluate(now)
        due = self.engine.due(now, float(self.config.resend_interval))
        if not due:
            return
        # as Prometheus: valid for 4 resend/evaluation intervals unless resent
        valid = 4 * max(float(self.config.resend_interval), float(self.config.evaluation_interval))
        items = [(a.id, {**alertmanager_alert(a, now, valid, self.config.external_url),
                         "_id": a.id, "_state": a.state}) for a in due]
        for s in self.senders:
            s.offer(items)
        self.engine.sent(due, now)

    def _run(self) -> None:
        while not self._stop.wait(float(self.config.evaluation_interval)):
            try:
                self.evaluate_and_notify()
            except Exception:
                log.exception("extension %s: evaluating alert rules failed", self.id)

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for s in self.senders:
            s.shutdown()
        if self.server is not None:
            self.server.shutdown()


def alert_control(host, name: str = "alerts") -> AlertControl | None:
    """The alert engine of the extension ``name`` of the running service
    (``host``), as the ``AlertControl`` interface; None without one."""
    ext = host.extension(name) if host is not None else None
    return getattr(ext, "engine", None)


factory = Factory("alerts", Kind.EXTENSION, AlertsConfig, Alerts)
