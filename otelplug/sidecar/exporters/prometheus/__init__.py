"""prometheus: serves ``/metrics`` for a Prometheus server to scrape, with
the metrics of every producer process merged (see merge.py for how
counters, histograms and gauges of several processes become one view).

Settings follow the Collector's prometheus exporter: ``endpoint``
(default 127.0.0.1:9464), ``namespace``, ``const_labels``,
``metric_expiration`` (5m), ``resource_to_telemetry_conversion``,
``add_metric_suffixes``, ``without_scope_info``; and for merging:
``gauge_aggregation`` (per_process | sum | max | min | last),
``process_label`` (the label naming the process of a per-process gauge)
and ``process_identity_attributes`` (the resource attributes that differ
between workers of one service and so are left out of labels and of
``target_info``).  The format is the Prometheus text format, or
OpenMetrics when the scraper asks for it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from otelplug import codec

from ...component import Factory, Kind
from ...config.decode import Duration
from ...config.transport import endpoint_errors
from ...helpers.exporter import Exporter, QueueConfig, RetryConfig
from . import exposition, naming
from .merge import MergedMetrics, Target

log = logging.getLogger("otelplug.sidecar")

DEFAULT_IDENTITY = ["process.pid", "service.instance.id", "process.parent_pid",
                    "process.creation.time"]
_SERVICE_ATTRS = ("service.name", "service.namespace", "service.instance.id")


@dataclass
class ResourceToTelemetryConfig:
    """``enabled``: resource attributes become labels of every series.

    ``exclude_service_attributes``: except service.name, service.namespace
    and service.instance.id (they are in ``job`` and ``instance``).
    """
    enabled: bool = False
    exclude_service_attributes: bool = False


@dataclass
class PrometheusConfig:
    """``endpoint``: ``host:port`` where ``/metrics`` is served.

    ``namespace``: a prefix for every metric name.

    ``const_labels``: labels added to every series.

    ``metric_expiration``: a series not updated for this long is dropped.

    ``resource_to_telemetry_conversion``: resource attributes as labels.

    ``add_metric_suffixes``: unit and ``_total`` suffixes on names.

    ``without_scope_info``: leave out the ``otel_scope_*`` labels.

    ``gauge_aggregation``: how the gauges of several producer processes
    merge: one series per process, or their sum, max, min or last value.

    ``process_label``: the label naming the process of a per-process gauge.

    ``process_identity_attributes``: resource attributes that differ between
    workers of one service, left out of labels and ``target_info``.

    ``sending_queue``: off by default: the merge needs every point in order.

    ``retry_on_failure``: off by default: a scrape endpoint has nothing to retry.
    """
    endpoint: str = "127.0.0.1:9464"
    namespace: str = ""
    const_labels: dict[str, str] = field(default_factory=dict)
    metric_expiration: Duration = Duration(300.0)
    resource_to_telemetry_conversion: ResourceToTelemetryConfig = field(
        default_factory=ResourceToTelemetryConfig)
    add_metric_suffixes: bool = True
    without_scope_info: bool = False
    gauge_aggregation: Literal["per_process", "sum", "max", "min", "last"] = "per_process"
    process_label: str = "process_pid"
    process_identity_attributes: list[str] = field(default_factory=lambda: list(DEFAULT_IDENTITY))
    # the Collector's exporter has neither: the merge needs to see every
    # point, and a scrape endpoint has nothing to retry
    sending_queue: QueueConfig = field(default_factory=lambda: QueueConfig(enabled=False))
    retry_on_failure: RetryConfig = field(default_factory=lambda: RetryConfig(enabled=False))

    def validate(self):
        errs = endpoint_errors(self.endpoint)
        if self.namespace and not naming.VALID_METRIC_NAME.match(naming.clean_up(self.namespace)):
            errs.append((("namespace",), f"{self.namespace!r} gives no valid metric name prefix"))
        for k in self.const_labels:
            if not naming.VALID_LABEL_NAME.match(k) or k.startswith("__"):
                errs.append((("const_labels", k), "is not a valid Prometheus label name "
                             "([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"))
        if self.metric_expiration <= 0:
            errs.append((("metric_expiration",), "must be positive"))
        if not naming.VALID_LABEL_NAME.match(self.process_label):
            errs.append((("process_label",), f"{self.process_label!r} is not a valid label name"))
        return errs


class PrometheusExporter(Exporter):
    def __init__(self, settings, config: PrometheusConfig):
        super().__init__(settings, config)
        self.namespace = naming.clean_up(config.namespace)
        self.store = MergedMetrics(expiration=float(config.metric_expiration),
                                   gauge_aggregation=config.gauge_aggregation,
                                   process_label=config.process_label)
        self._identity = set(config.process_identity_attributes)
        self._targets: dict[int, Target] = {}
        self._scopes: dict[int, dict] = {}
        self._names: dict[tuple, str] = {}
        self._attr_cache: dict[str, str] = {}
        self._server = None
        self._thread = None
        self.address = config.endpoint

    # -- pipeline side -----------------------------------------------------------
    def _target(self, key: int, defs) -> Target:
        tg = self._targets.get(key)
        if tg is not None:
            return tg
        attrs = {}
        payload = defs.get(key)
        if payload is not None:
            try:
                attrs = codec.decode_definition(payload).attributes
            except Exception as exc:
                log.warning("prometheus: undecodable resource definition: %s", exc)
        c = self.config
        shared = {k: v for k, v in attrs.items() if k not in self._identity}
        labels = {}
        name, ns = attrs.get("service.name"), attrs.get("service.namespace")
        if name is not None:
            labels["job"] = f"{ns}/{name}" if ns else str(name)
        if "service.instance.id" not in self._identity and "service.instance.id" in attrs:
            labels["instance"] = naming.label_value(attrs["service.instance.id"])
        info_attrs = {k: v for k, v in shared.items() if k not in _SERVICE_ATTRS}
        info = None
        if info_attrs:
            info = dict(labels)
            info.update(naming.labels_from_attributes(info_attrs, self._attr_cache))
            info = tuple(sorted(info.items()))
        if c.resource_to_telemetry_conversion.enabled:
            conv = {k: v for k, v in shared.items()
                    if not (c.resource_to_telemetry_conversion.exclude_service_attributes
                            and k in _SERVICE_ATTRS)}
            labels.update(naming.labels_from_attributes(conv, self._attr_cache))
        process = attrs.get("process.pid", attrs.get("service.instance.id", f"{key:016x}"))
        tg = Target(key, labels, naming.label_value(process), info)
        if len(self._targets) > 100_000:
            self._targets.clear()
        self._targets[key] = tg
        return tg

    def _scope_labels(self, key: int, defs) -> dict:
        if self.config.without_scope_info or not key:
            return {}
        got = self._scopes.get(key)
        if got is None:
            got = {}
            payload = defs.get(key)
            if payload is not None:
                try:
                    sc = codec.decode_definition(payload)
                    if sc.name:
                        got["otel_scope_name"] = sc.name
                    if sc.version:
                        got["otel_scope_version"] = sc.version
                except Exception:
                    pass
            if len(self._scopes) > 100_000:
                self._scopes.clear()
            self._scopes[key] = got
        return got

    def _prom_name(self, m) -> str:
        k = (m.name, m.unit, m.kind, m.is_monotonic)
        name = self._names.get(k)
        if name is None:
            kind = {1: "gauge", 2: "sum", 3: "histogram", 4: "histogram"}.get(m.kind, "gauge")
            name = naming.metric_name(m.name, m.unit, kind, m.is_monotonic, self.namespace,
                                      self.config.add_metric_suffixes)
            self._names[k] = name
        return name

    def send(self, records, timeout: float) -> None:
        const = self.config.const_labels
        for payload in records.payloads():
            try:
                m = codec.decode_metric(payload)
            except Exception as exc:
                log.warning("prometheus: dropping an undecodable metric record: %s", exc)
                continue
            target = self._target(m.resource_key, records.defs)
            self.store.ingest(target, m, self._prom_name(m),
                              self._scope_labels(m.scope_key, records.defs), const,
                              self._attr_cache)

    # -- scrape side -------------------------------------------------------------
    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        om = exposition.wants_openmetrics(accept)
        body = exposition.render(self.store.snapshot(), om).encode()
        return body, exposition.OPENMETRICS_TYPE if om else exposition.TEXT_TYPE

    def claims(self) -> list[str]:
        """What it holds exclusively while running (see Service.claims)."""
        return [f"tcp {self.config.endpoint}"]

    def start(self, host) -> None:

        from ...helpers.http_server import NOT_FOUND, GetServer, Response

        def respond(path, query, headers):
            if path != "/metrics":
                return NOT_FOUND
            body, ctype = self.exposition(headers.get("Accept"))
            return Response(content_type=ctype, body=body)

        # an explicit ":9464" listens everywhere, as in the Collector; the
        # default endpoint is loopback
        endpoint = self.config.endpoint
        if endpoint.startswith(":"):
            endpoint = "0.0.0.0" + endpoint
        self._server = GetServer(endpoint, respond, f"{self.id}-http").start()
        self.address = self._server.address
        super().start(host)

    def shutdown(self, drain_timeout: float = 5.0) -> None:
        super().shutdown(drain_timeout)
        if self._server is not None:
            self._server.shutdown()
            self._server = None


factory = Factory("prometheus", Kind.EXPORTER, PrometheusConfig, PrometheusExporter,
                  signals=("metrics",))
