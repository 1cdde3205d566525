"""ShmMetricExporter: a push MetricExporter writing each metric as a ring
record, for ``PeriodicExportingMetricReader``.

Sums, gauges, histograms and exponential histograms keep their temporality,
monotonicity and exemplars.  A metric whose points do not fit one record is
split into several records (each a slice of the points), so one huge metric
never drops the others.
"""
from __future__ import annotations

import logging

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

from otelplug import codec as _codec
from otelplug.codec import types as _types

from . import _shared

log = logging.getLogger("otelplug.producer")

_METRIC = _types.METRIC


class ShmMetricExporter(MetricExporter):
    """Arguments as for ``ShmSpanProcessor``, plus the SDK's
    ``preferred_temporality`` and ``preferred_aggregation``."""

    def __init__(self, channel: str | None = None, *, preferred_temporality=None,
                 preferred_aggregation=None, capacity: int | None = None,
                 max_record: int | None = None, stamp_pid: bool = True, producer=None,
                 codec=None):
        super().__init__(preferred_temporality=preferred_temporality,
                         preferred_aggregation=preferred_aggregation)
        self._codec = codec or _codec.default_impl()
        self._shared = _shared.acquire(channel, capacity=capacity, max_record=max_record,
                                       stamp_pid=stamp_pid, producer=producer, codec=self._codec)
        self._producer = self._shared.producer
        self._defs = self._shared.definitions
        self._shutdown = False
        self.written = 0
        self.dropped = 0
        self.encode_errors = 0
        self._warned = False

    @property
    def producer(self):
        return self._producer

    def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        if self._shutdown:
            return MetricExportResult.FAILURE
        ok = True
        for rm in metrics_data.resource_metrics:
            try:
                rkey = self._defs.resource_key(rm.resource)
            except Exception as exc:
                self._encode_failed(exc)
                ok = False
                continue
            for sm in rm.scope_metrics:
                skey = self._defs.scope_key(sm.scope)
                for metric in sm.metrics:
                    try:
                        ok &= self._write_metric(metric, rkey, skey, rm.schema_url or None,
                                                 sm.schema_url or None)
                    except Exception as exc:  # never into the app
                        self._encode_failed(exc)
                        ok = False
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def _write_metric(self, metric, rkey, skey, rschema, sschema) -> bool:
        """Write ``metric`` as one record, or as slices of its points when it
        is larger than a record may be."""
        enc = self._codec.encode_metric
        limit = self._shared.max_record
        n = len(metric.data.data_points)
        pending = [(0, n)]
        ok = True
        while pending:
            start, stop = pending.pop()
            rec = enc(metric, rkey, skey, rschema, sschema, start, stop)
            if len(rec) > limit and stop - start > 1:
                mid = (start + stop) // 2
                pending += [(mid, stop), (start, mid)]
                continue
            if self._producer.write(_METRIC, rec):
                self.written += 1
            else:
                self.dropped += 1
                ok = False
        return ok

    def _encode_failed(self, exc) -> None:
        self.encode_errors += 1
        if not self._warned:
            self._warned = True
            log.warning("otelplug: cannot encode a metric (%s: %s); dropped and counted",
                        type(exc).__name__, exc)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return not self._shutdown

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        self._shared.release()

    def stats(self) -> dict:
        return {"written": self.written, "dropped": self.dropped,
                "encode_errors": self.encode_errors, "ring": self._producer.stats()}
