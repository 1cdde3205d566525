"""The alert engine: pending -> firing -> resolved, acknowledgements and
silences, state kept in a JSON file across restarts.

An alert is one instance of a rule: the rule's name (``alertname``), its
labels and the instance labels from the evaluator.  Its id is a hash of
those labels, so the same condition keeps the same id across restarts
(Alertmanager's fingerprint idea).

- An active instance is ``pending`` until it has been active for the rule's
  ``for``, then ``firing``; when it stops being active it stays firing for
  ``keep_firing_for``, then is ``resolved`` (a pending one just goes away).
- ``ack``: who, a note and an optional expiry; cleared when the alert
  resolves.  ``resolve``: a person closes it; it does not come back until
  its condition has cleared once.  ``silence``: label matchers and a
  duration; silenced alerts are listed but not notified.
- Every state change is passed to ``on_event`` (the sidecar logs it and
  emits it as a log record) and the state file is rewritten atomically.

``AlertControl`` is the interface the CLI and the sidecar's HTTP API use.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Protocol

log = logging.getLogger("otelplug.alerts")
STATE_VERSION = 1


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(labels: dict) -> str:
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Rule:
    """What the engine needs of a rule; ``evaluator.active(now_ns)``
    returns ``{instance label tuple: value}`` (rules.py)."""
    name: str
    evaluator: object
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    kind: str = ""


@dataclass
class Alert:
    id: str
    rule: str
    labels: dict
    annotations: dict
    state: str                     # pending | firing | resolved
    active_since: float
    last_active: float
    value: float = 0.0
    fired_at: float | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    ack: dict | None = None        # {"by", "note", "at", "expires"}
    last_sent: float | None = None
    resolved_sent: bool = False
    wait_clear: bool = False       # resolved by hand: wait for the condition to clear

    def view(self, silenced_by: str | None) -> dict:
        d = asdict(self)
        d["silenced_by"] = silenced_by
        return d


@dataclass
class Silence:
    id: str
    matchers: dict
    until: float
    by: str = ""
    comment: str = ""

    def matches(self, labels: dict) -> bool:
        return all(str(labels.get(k)) == str(v) for k, v in self.matchers.items())


class AlertControl(Protocol):
    def list_alerts(self, include_resolved: bool = True) -> list[dict]: ...
    def ack(self, alert_id: str, by: str, note: str = "", expires_s: float | None = None) -> dict: ...
    def resolve(self, alert_id: str, by: str, note: str = "") -> dict: ...
    def silence(self, matchers: dict, duration_s: float, by: str, comment: str = "") -> dict: ...
    def silences(self) -> list[dict]: ...
    def rules_status(self) -> list[dict]: ...


class UnknownAlert(KeyError):
    pass


class AlertEngine:
    def __init__(self, state_path: str | None = None, on_event: Callable[[dict], None] | None = None,
                 retain_resolved_s: float = 3600.0, clock: Callable[[], float] = time.time,
                 restore_grace_s: float = 0.0):
        self.state_path = state_path
        self.on_event = on_event or (lambda e: None)
        self.retain_resolved_s = retain_resolved_s
        self.clock = clock
        self.rules: dict[str, Rule] = {}
        self._owners: dict[str, dict[str, Rule]] = {}
        self.alerts: dict[str, Alert] = {}
        self._silences: dict[str, Silence] = {}
        self._lock = threading.RLock()
        self._dirty = False      # something to write to the state file
        self.save_failures = 0
        # after a restart the rules' windows start empty: alerts restored
        # from the file are not resolved (or dropped, if pending) for this
        # long, so a restart does not resolve what still holds
        self._grace_until = 0.0
        if state_path and os.path.exists(state_path):
            self._load()
            self._grace_until = clock() + restore_grace_s

    # -- rules ---------------------------------------------------------------
    def set_rules(self, rules: list[Rule], owner: str = "") -> None:
        """Install (or re-install on reload) the rules of ``owner`` (one
        analytics connector).  Alerts of rules that keep their name keep
        their state; those of rules the owner no longer has resolve."""
        with self._lock:
            self._owners[owner] = {r.name: r for r in rules}
            self.rules = {n: r for own in self._owners.values() for n, r in own.items()}
            now = self.clock()
            for a in list(self.alerts.values()):
                if a.rule not in self.rules and a.state != "resolved":
                    self._resolve(a, now, by="rule removed")
            self._save()

    def drop_rules(self, owner: str, rules: list[Rule]) -> None:
        """The owner stops: forget its rules if they are still the ones it
        installed (after a reload its successor already replaced them)."""
        with self._lock:
            cur = self._owners.get(owner)
            if cur is not None and list(cur.values()) == list(rules):
                del self._owners[owner]
                self.rules = {n: r for own in self._owners.values() for n, r in own.items()}

    def evaluate(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        now_ns = int(now * 1e9)
        with self._lock:
            for rule in self.rules.values():
                try:
                    active = rule.evaluator.active(now_ns)
                except Exception:
                    log.exception("alert rule %s: evaluation failed", rule.name)
                    continue
                self._apply(rule, active, now)
            self._expire(now)
            if self._dirty:
                self._save()

    def _labels(self, rule: Rule, inst: tuple) -> dict:
        labels = {"alertname": rule.name, **{str(k): str(v) for k, v in rule.labels.items()}}
        labels.update(dict(inst))
        return labels

    def _apply(self, rule: Rule, active: dict, now: float) -> None:
        seen = set()
        for inst, value in active.items():
            labels = self._labels(rule, inst)
            aid = fingerprint(labels)
            seen.add(aid)
            a = self.alerts.get(aid)
            if a is not None and a.state == "resolved" and a.wait_clear:
                a.value = float(value)
                continue
            if a is None or a.state == "resolved":
                a = self.alerts[aid] = Alert(aid, rule.name, labels, dict(rule.annotations),
                                             "pending", now, now, float(value))
                self._event(a, "inactive", "pending")
            a.last_active, a.value = now, float(value)
            a.annotations = dict(rule.annotations)      # a reload may have changed them
            if a.state == "pending" and now - a.active_since >= rule.for_s:
                a.state, a.fired_at = "firing", now
                self._event(a, "pending", "firing")
        for a in list(self.alerts.values()):
            if a.rule != rule.name or a.id in seen:
                continue
            if a.state == "resolved":
                if a.wait_clear:
                    a.wait_clear, self._dirty = False, True
            elif now < self._grace_until:
                continue
            elif a.state == "pending":
                del self.alerts[a.id]
                self._event(a, "pending", "inactive")
            elif now - a.last_active >= rule.keep_firing_for_s:
                self._resolve(a, now)

    def _resolve(self, a: Alert, now: float, by: str | None = None) -> None:
        old = a.state
        a.state, a.resolved_at, a.resolved_by, a.ack = "resolved", now, by, None
        a.resolved_sent = old != "firing"      # never notified: nothing to resolve there
        self._event(a, old, "resolved")

    def _expire(self, now: float) -> None:
        for a in list(self.alerts.values()):
            if a.ack and a.ack.get("expires") and a.ack["expires"] <= now:
                a.ack = None
                self._emit("alert.ack_expired", a)
            if a.state == "resolved" and not a.wait_clear and a.resolved_sent and \
                    now - (a.resolved_at or now) > self.retain_resolved_s:
                del self.alerts[a.id]
                self._dirty = True
        for s in [s for s in self._silences.values() if s.until <= now]:
            del self._silences[s.id]
            self._dirty = True
            self.on_event({"event": "alert.silence_expired", "silence.id": s.id, "time": now})

    # -- events --------------------------------------------------------------
    def _event(self, a: Alert, old: str, new: str) -> None:
        self._emit("alert.state_change", a, **{"alert.from": old, "alert.to": new})

    def _emit(self, name: str, a: Alert, **extra) -> None:
        self._dirty = True
        ev = {"event": name, "alert.id": a.id, "alert.name": a.rule, "alert.state": a.state,
              "alert.value": a.value, "alert.labels": dict(a.labels), "time": self.clock(), **extra}
        log.info("%s %s %s %s", name, a.rule, a.id, " ".join(f"{k}={v}" for k, v in extra.items()))
        try:
            self.on_event(ev)
        except Exception:
            log.exception("alert event handler failed")

    # -- control (AlertControl) ------------------------------------------------
    def silenced_by(self, labels: dict) -> str | None:
        now = self.clock()
        for s in self._silences.values():
            if s.until > now and s.matches(labels):
                return s.id
        return None

    def list_alerts(self, include_resolved: bool = True) -> list[dict]:
        with self._lock:
            return [a.view(self.silenced_by(a.labels)) for a in
                    sorted(self.alerts.values(), key=lambda a: (a.rule, a.active_since))
                    if include_resolved or a.state != "resolved"]

    def _get(self, alert_id: str) -> Alert:
        a = self.alerts.get(alert_id)
        if a is None:
            hits = [x for x in self.alerts.values() if x.id.startswith(alert_id)] if alert_id else []
            if len(hits) != 1:
                raise UnknownAlert(f"no alert with id {alert_id!r}" if not hits
                                   else f"alert id {alert_id!r} is ambiguous")
            a = hits[0]
        return a

    def ack(self, alert_id: str, by: str, note: str = "", expires_s: float | None = None) -> dict:
        with self._lock:
            a = self._get(alert_id)
            if a.state == "resolved":
                raise ValueError(f"alert {a.id} is resolved: nothing to acknowledge")
            now = self.clock()
            a.ack = {"by": by, "note": note, "at": now, "expires": now + expires_s if expires_s else None}
            self._emit("alert.acknowledged", a, **{"alert.ack.by": by, "alert.ack.note": note})
            self._save()
            return a.view(self.silenced_by(a.labels))

    def resolve(self, alert_id: str, by: str, note: str = "") -> dict:
        with self._lock:
            a = self._get(alert_id)
            if a.state == "resolved":
                raise ValueError(f"alert {a.id} is already resolved")
            self._resolve(a, self.clock(), by=by)
            a.wait_clear = True
            self._save()
            return a.view(None)

    def silence(self, matchers: dict, duration_s: float, by: str, comment: str = "") -> dict:
        if not matchers:
            raise ValueError("a silence needs at least one label matcher")
        if duration_s <= 0:
            raise ValueError("a silence needs a positive duration")
        with self._lock:
            s = Silence(uuid.uuid4().hex[:12], {str(k): str(v) for k, v in matchers.items()},
                        self.clock() + duration_s, by, comment)
            self._silences[s.id] = s
            self.on_event({"event": "alert.silenced", "silence.id": s.id, "silence.matchers": s.matchers,
                           "silence.by": by, "time": self.clock()})
            self._save()
            return asdict(s)

    def silences(self) -> list[dict]:
        with self._lock:
            return [asdict(s) for s in self._silences.values()]

    def rules_status(self) -> list[dict]:
        """Per rule: kind, alerts not resolved, and what it matched so far
        (``matched``, ``last_match``) when its evaluator tells."""
        with self._lock:
            out = []
            for r in self.rules.values():
                st = r.evaluator.status() if hasattr(r.evaluator, "status") else {}
                out.append({"name": r.name, "kind": r.kind,
                            "alerts": sum(1 for a in self.alerts.values()
                                          if a.rule == r.name and a.state != "resolved"), **st})
            return out

    # -- notifications -----------------------------------------------------------
    def due(self, now: float, resend_s: float) -> list[Alert]:
        """Alerts to send now: firing ones not silenced and not sent within
        ``resend_s``; resolved ones not yet sent as resolved."""
        with self._lock:
            out = []
            for a in self.alerts.values():
                if a.state == "firing" and self.silenced_by(a.labels) is None and (
                        a.last_sent is None or now - a.last_sent >= resend_s):
                    out.append(a)
                elif a.state == "resolved" and not a.resolved_sent:
                    out.append(a)
            return out

    def sent(self, alerts: list[Alert], now: float) -> None:
        with self._lock:
            for a in alerts:
                if a.state == "resolved":
                    a.resolved_sent = True
                else:
                    a.last_sent = now
            if alerts:
                self._save()

    # -- state file -----------------------------------------------------------
    def _save(self) -> None:
        self._dirty = False
        if not self.state_path:
            return
        data = {"version": STATE_VERSION, "alerts": [asdict(a) for a in self.alerts.values()],
                "silences": [asdict(s) for s in self._silences.values()]}
        tmp = f"{self.state_path}.tmp"
        try:
            # owner-only: alert labels and notes can say more than they should
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.state_path)     # readers never see half a file
        except OSError as exc:
            self.save_failures += 1
            log.error("alerts: cannot write the state file %s: %s", self.state_path, exc)

    def _load(self) -> None:
        try:
            with open(self.state_path) as f:
                data = json.load(f)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
            self.alerts = {a["id"]: Alert(**a) for a in data.get("alerts", [])}
            self._silences = {s["id"]: Silence(**s) for s in data.get("silences", [])}
        except (OSError, ValueError, TypeError, KeyError) as exc:
            # a broken state file must not stop the sidecar: start empty, say so
            log.error("alerts: ignoring the state file %s: %s", self.state_path, exc)
            self.alerts, self._silences = {}, {}
