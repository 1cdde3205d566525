"""semconv_findings: the semconv processors' findings as OTLP log records,
one per finding group (id, level, signal, attribute/metric) and interval
in which it occurred again, carrying the trace and span id of an example
span, so findings reach any logs backend without a scrape::

    receivers:
      semconv_findings: {interval: 60s}
    service:
      pipelines:
        logs/findings: {receivers: [semconv_findings], exporters: [otlp]}

Attributes: ``weaver.finding.id``, ``weaver.finding.level``,
``weaver.finding.signal_type``, ``otelplug.finding.subject`` (attribute,
metric or event name), ``otelplug.finding.count`` (items in this
interval), ``otelplug.finding.total``, ``otelplug.finding.service`` (of the
example) and, for deprecated names, ``weaver.finding.context.renamed_to``.
A batch the pipeline refuses is counted in
``otelplug_receiver_refused_log_records_total{receiver}`` and logged.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from otelplug import codec
from otelplug.codec import model

from ..component import Factory, Kind
from ..config.decode import Duration
from otelplug.codec.recordset import RecordSet
from ..rewrite import encode_log, encode_resource

log = logging.getLogger("otelplug.sidecar")
EVENT = "otelplug.semconv.finding_group"
_SEVERITY = {"violation": (17, "ERROR"), "improvement": (13, "WARN"), "information": (9, "INFO")}


@dataclass
class SemconvFindingsConfig:
    """``interval``: how often finding groups are reported (a group only in
    an interval in which it occurred again).
    """
    interval: Duration = Duration(60.0)

    def validate(self):
        return [(("interval",), "must be > 0")] if self.interval <= 0 else []


class _Scope:
    def __init__(self, name):
        self.name, self.version, self.schema_url, self.attributes = name, None, None, {}


class SemconvFindings:
    def __init__(self, settings, config: SemconvFindingsConfig, consumers: dict):
        self.id = str(settings.id)
        self.config = config
        self.consumer = consumers.get("logs")
        self.telemetry = settings.telemetry
        self._refused = settings.telemetry.counter("receiver_refused_log_records",
                                                   "log_records refused by the pipeline", ("receiver",))
        self._reported: dict[tuple, float] = {}
        self._stop = threading.Event()
        self._thread = None
        self.host = None
        rp = encode_resource(model.Resource({"service.name": "otelplug", "otelplug.component": self.id}))
        sp = codec.encode_scope(_Scope("otelplug.sidecar.semconv_findings"))
        self._defs = {codec.definition_key(rp): rp, codec.definition_key(sp): sp}

    def start(self, host) -> None:
        self.host = host
        self._thread = threading.Thread(target=self._run, name=f"{self.id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(float(self.config.interval)):
            self.report()

    def report(self) -> int:
        """Emit one log record per group that grew since the last report."""
        from ..extensions.api.findings import groups

        rows = []
        for g in groups(self.host, self.telemetry, None):
            before = self._reported.get(g["key"], 0)
            if g["count"] > before:
                rows.append((g, g["count"] - before))
                self._reported[g["key"]] = g["count"]
        if not rows or self.consumer is None:
            return 0
        rs = self._records(rows)
        try:
            self.consumer.consume(rs)
        except Exception as exc:
            self._refused.add(rs.items, receiver=self.id)
            log.warning("%s: %d finding log records refused by the pipeline: %s", self.id, rs.items, exc)
        return len(rows)

    def _records(self, rows) -> RecordSet:
        rkey, skey = self._defs
        now = time.time_ns()
        parts = []
        for g, n in rows:
            attrs = {"weaver.finding.id": g["id"], "weaver.finding.level": g["level"],
                     "weaver.finding.signal_type": g["signal"],
                     "otelplug.finding.subject": g["attribute_or_metric"],
                     "otelplug.finding.count": int(n), "otelplug.finding.total": int(g["count"])}
            if g.get("renamed_to"):
                attrs["weaver.finding.context.renamed_to"] = g["renamed_to"]
            ex = g.get("example") or {}
            if ex.get("service"):
                attrs["otelplug.finding.service"] = ex["service"]
            sev, text = _SEVERITY.get(g["level"], (9, "INFO"))
            tid, sid = int(ex.get("trace_id", "0"), 16), int(ex.get("span_id", "0"), 16)
            parts.append(encode_log(model.LogData(
                time_unix_nano=now, observed_time_unix_nano=now, trace_id=tid, span_id=sid,
                trace_flags=1 if sid else None, severity_number=sev, severity_text=text, event_name=EVENT,
                body=f"{n} {g['signal'] or 'item'}s with {g['id']} ({g['attribute_or_metric'] or '-'}) "
                     f"in the last {float(self.config.interval):g}s",
                attributes=attrs, resource_key=rkey, scope_key=skey)))
        lengths = np.fromiter((len(p) for p in parts), dtype=np.uint32, count=len(parts))
        offsets = np.zeros(len(parts), dtype=np.uint64)
        offsets[1:] = np.cumsum(lengths[:-1], dtype=np.uint64)
        return RecordSet("logs", b"".join(parts), offsets, lengths, dict(self._defs))

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.host is not None:
            self.report()       # what occurred since the last interval


factory = Factory("semconv_findings", Kind.RECEIVER, SemconvFindingsConfig, SemconvFindings,
                  signals=("logs",))
