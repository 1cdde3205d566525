"""OTLP-JSON lines (the file exporter's output) into numpy columns: one
row per span (service, operation, start, duration, error, semconv level),
and item counts per service and signal for logs and metric points."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

_ERROR = {2, "2", "STATUS_CODE_ERROR"}


@dataclass
class Spans:
    service: np.ndarray          # object (str)
    name: np.ndarray             # object (str)
    start_ns: np.ndarray         # int64
    duration_ms: np.ndarray      # float64
    error: np.ndarray            # bool
    violation: np.ndarray        # bool: annotated with a semconv violation

    def __len__(self):
        return len(self.start_ns)

    def select(self, mask) -> "Spans":
        return Spans(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


@dataclass
class Telemetry:
    spans: Spans
    items: dict = field(default_factory=dict)     # (service, signal) -> {start_ns list}
    lines: int = 0


def _attrs(kvs) -> dict:
    out = {}
    for kv in kvs or ():
        v = kv.get("value") or {}
        out[kv.get("key")] = next(iter(v.values()), None) if v else None
    return out


class SourceError(ValueError):
    pass


def read(paths) -> Telemetry:
    service, name, start, dur, err, viol = [], [], [], [], [], []
    items: dict = {}
    lines = 0
    for path in paths:
        try:
            f = open(path, encoding="utf-8")
        except OSError as exc:
            raise SourceError(f"{path}: cannot read: {exc.strerror}") from None
        with f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except ValueError as exc:
                    raise SourceError(f"{path}:{lineno}: not OTLP-JSON: {exc}") from None
                if not isinstance(doc, dict):
                    raise SourceError(f"{path}:{lineno}: not an OTLP-JSON object")
                lines += 1
                for rs in doc.get("resourceSpans") or ():
                    svc = str(_attrs((rs.get("resource") or {}).get("attributes")).get("service.name", ""))
                    for ss in rs.get("scopeSpans") or ():
                        for s in ss.get("spans") or ():
                            t0, t1 = int(s.get("startTimeUnixNano", 0)), int(s.get("endTimeUnixNano", 0))
                            a = _attrs(s.get("attributes"))
                            service.append(svc)
                            name.append(str(s.get("name", "")))
                            start.append(t0)
                            dur.append(max(t1 - t0, 0) / 1e6)
                            err.append((s.get("status") or {}).get("code") in _ERROR)
                            viol.append(a.get("otelplug.semconv.level") == "violation")
                for sig, outer, inner, leaf in (("logs", "resourceLogs", "scopeLogs", "logRecords"),
                                                ("metrics", "resourceMetrics", "scopeMetrics", "metrics")):
                    for r in doc.get(outer) or ():
                        svc = str(_attrs((r.get("resource") or {}).get("attributes")).get("service.name", ""))
                        for sc in r.get(inner) or ():
                            for item in sc.get(leaf) or ():
                                times = _item_times(sig, item)
                                items.setdefault((svc, sig), []).extend(times)
    spans = Spans(np.array(service, dtype=object), np.array(name, dtype=object),
                  np.array(start, dtype=np.int64), np.array(dur, dtype=np.float64),
                  np.array(err, dtype=bool), np.array(viol, dtype=bool))
    return Telemetry(spans, {k: np.array(v, dtype=np.int64) for k, v in items.items()}, lines)


def from_store(url: str, since: float, until: float, max_rows: int = 5_000_000) -> Telemetry:
    """The spans and log records of [since, until) from the telemetry store
    (otelplug/store; the sidecar serves reads of a DuckDB file it holds)."""
    from otelplug.store import StoreError, open_store

    try:
        store = open_store(url, "read")
    except (StoreError, OSError) as exc:
        raise SourceError(f"store {url}: {exc}") from None
    try:
        rng = dict(since=int(since * 1e9), until=int(until * 1e9), limit=max_rows)
        rows = store.spans(**rng)
        logs = store.logs(**rng)
    except StoreError as exc:
        raise SourceError(f"store {url}: {exc}") from None
    finally:
        store.close()
    spans = Spans(np.array([r["ServiceName"] for r in rows], dtype=object),
                  np.array([r["SpanName"] for r in rows], dtype=object),
                  np.array([int(r["Timestamp"]) for r in rows], dtype=np.int64),
                  np.array([int(r["Duration"]) / 1e6 for r in rows], dtype=np.float64),
                  np.array([r["StatusCode"] == "STATUS_CODE_ERROR" for r in rows], dtype=bool),
                  np.array([(r.get("SpanAttributes") or {}).get("otelplug.semconv.level") == "violation"
                            for r in rows], dtype=bool))
    items: dict = {}
    for r in logs:
        items.setdefault((r.get("ServiceName", ""), "logs"), []).append(int(r["Timestamp"]))
    return Telemetry(spans, {k: np.array(v, dtype=np.int64) for k, v in items.items()}, len(rows))


def _item_times(signal: str, item: dict) -> list[int]:
    if signal == "logs":
        return [int(item.get("timeUnixNano") or item.get("observedTimeUnixNano") or 0)]
    out = []
    for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
        for p in (item.get(kind) or {}).get("dataPoints") or ():
            out.append(int(p.get("timeUnixNano", 0)))
    return out
