"""analytics: windowed aggregates, anomaly scores and alert rules over
spans and log records (traces -> metrics, logs -> metrics).

See config.py for the options and rule shapes, otelplug/analytics/ for
the windows, sketches, anomaly scores, rules and alert engine, output.py
for the metrics it emits.  Rules run in an ``alerts`` extension.
"""
from __future__ import annotations

from ...component import Factory, Kind
from ...consumer import Consumer
from .config import AnalyticsConfig
from .core import core_for


class Analytics(Consumer):
    def __init__(self, settings, config: AnalyticsConfig, next_consumer):
        self.id = str(settings.id)
        self.signal = settings.signal or "traces"
        self.config = config
        self.next = next_consumer
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


factory = Factory("analytics", Kind.CONNECTOR, AnalyticsConfig, Analytics,
                  connects=(("traces", "metrics"), ("logs", "metrics")))
