"""analytics: windowed aggregates, anomaly scores and alert rules over
spans and log records (traces -> metrics, logs -> metrics).

See config.py for the options and rule shapes, otelplug/analytics/ for
the windows, sketches, anomaly scores, rules and alert engine, output.py
for the metrics it emits.  Rules run in an ``alerts`` extension.
"""
from __future__ import annotations

from ...component import Factory, Kind
from ...config.errors import ConfigError, ConfigErrors
from ...consumer import Consumer
from .config import AnalyticsConfig
from .core import core_for


class Analytics(Consumer):
    def __init__(self, settings, config: AnalyticsConfig, next_consumer):
        self.id = str(settings.id)
        self.signal = settings.signal or "traces"
        self.config = config
        self.next = next_consumer
        host = settings.host
        if config.alerts and host is not None and hasattr(host, "extension"):
            # at build time, so `otelplug validate` says it too
            ext = host.extension(config.alerts)
            if ext is None or not hasattr(ext, "engine"):
                raise ConfigErrors([ConfigError(
                    ("connectors", self.id, "alerts"),
                    f"no alerts extension {config.alerts!r} in service::extensions")])
        self.core = core_for(self.id, config, settings.telemetry)

    def consume(self, records) -> None:
        try:
            self.core.add(self.signal, records)
        finally:
            records.settle()      # aggregated: this connector is done with the items

    def start(self, host) -> None:
        self.core.attach(self.signal, self.next, host)

    def shutdown(self) -> None:
        self.core.detach()


# window metrics go to the metrics pipelines it feeds, alert events (state
# changes, anomaly findings) to the logs pipelines it feeds
factory = Factory("analytics", Kind.CONNECTOR, AnalyticsConfig, Analytics,
                  connects=(("traces", "metrics"), ("logs", "metrics"), ("traces", "logs"), ("logs", "logs")))
