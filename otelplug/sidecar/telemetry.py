"""The sidecar's own metrics, exposed in Prometheus text format.

Names mirror the Collector's ``otelcol_*`` self-metrics with an
``otelplug_`` prefix (``otelplug_receiver_accepted_spans_total``,
``otelplug_exporter_send_failed_spans_total``, ...).  Counters are bumped
per batch, never per item, so their cost does not show in the hot path.
"""
from __future__ import annotations

import threading


def _escape(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names, values) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values)) + "}"


class _Family:
    kind = "untyped"

    def __init__(self, name: str, help_: str, labels: tuple[str, ...]):
        self.name, self.help, self.labelnames = name, help_, labels
        self._values: dict[tuple, float] = {}
        self._lock = threading.Lock()

    def samples(self):
        with self._lock:
            return list(self._values.items())

    def value(self, **labels) -> float:
        return self._values.get(tuple(str(labels[n]) for n in self.labelnames), 0.0)


class Counter(_Family):
    kind = "counter"

    def add(self, amount: float, **labels) -> None:
        if amount == 0:
            return
        key = tuple(str(labels[n]) for n in self.labelnames)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


    def add_many(self, increments) -> None:
        """Add many ``(label_values_tuple, amount)`` pairs under one lock:
        for callers that already hold label tuples (per-batch tallies)."""
        with self._lock:
            vals = self._values
            for key, amount in increments:
                vals[key] = vals.get(key, 0.0) + amount


class Gauge(_Family):
    kind = "gauge"

    def set(self, value: float, **labels) -> None:
        key = tuple(str(labels[n]) for n in self.labelnames)
        with self._lock:
            self._values[key] = value

    def remove(self, **labels) -> None:
        key = tuple(str(labels[n]) for n in self.labelnames)
        with self._lock:
            self._values.pop(key, None)


class Telemetry:
    """The sidecar's self-metrics: a registry of metric families plus
    callbacks run before each scrape (its config section is
    ``config.model.TelemetrySection``)."""

    PREFIX = "otelplug_"

    def __init__(self):
        self._families: dict[str, _Family] = {}
        self._collectors = []
        self._lock = threading.Lock()

    def _family(self, cls, name, help_, labels):
        full = self.PREFIX + name
        with self._lock:
            fam = self._families.get(full)
            if fam is None:
                fam = self._families[full] = cls(full, help_, tuple(labels))
            return fam

    def counter(self, name: str, help_: str, labels=()) -> Counter:
        return self._family(Counter, name, help_, labels)

    def gauge(self, name: str, help_: str, labels=()) -> Gauge:
        return self._family(Gauge, name, help_, labels)

    def on_collect(self, fn) -> None:
        """``fn()`` runs before each exposition (to refresh gauges)."""
        self._collectors.append(fn)

    def off_collect(self, fn) -> None:
        """Forget a callback (its component is gone, e.g. after a reload)."""
        try:
            self._collectors.remove(fn)
        except ValueError:
            pass

    def get(self, name: str):
        return self._families.get(self.PREFIX + name)

    def refresh(self) -> None:
        """Run the scrape callbacks (gauges up to date), as before an exposition."""
        for fn in list(self._collectors):
            try:
                fn()
            except Exception:  # a broken gauge must not break the endpoint
                pass

    def families(self) -> list:
        """Every metric family (for the HTTP API's status view)."""
        with self._lock:
            return list(self._families.values())

    def exposition(self) -> str:
        self.refresh()
        out = []
        for fam in sorted(self._families.values(), key=lambda f: f.name):
            name = fam.name + ("_total" if fam.kind == "counter" else "")
            out.append(f"# HELP {name} {fam.help}")
            out.append(f"# TYPE {name} {fam.kind}")
            for key, v in sorted(fam.samples()):
                out.append(f"{name}{_labels(fam.labelnames, key)} {float(v)!r}")
        return "\n".join(out) + "\n"


class MetricsServer:
    """Serves ``/metrics`` on a host:port (127.0.0.1 by default)."""

    def __init__(self, telemetry: Telemetry, address: str):
        from .helpers.http_server import NOT_FOUND, GetServer, Response

        def respond(path, query, headers):
            if path != "/metrics":
                return NOT_FOUND
            return Response(content_type="text/plain; version=0.0.4; charset=utf-8",
                            body=telemetry.exposition().encode())

        self._server = GetServer(address, respond, "otelplug-metrics")
        self.address = self._server.address

    def start(self):
        self._server.start()

    def shutdown(self):
        self._server.shutdown()
