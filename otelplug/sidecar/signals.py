"""Which ring record types carry which signal, and how items are counted."""
from __future__ import annotations

from otelplug.codec.recordset import RECORD_TYPE

__all__ = ["ITEM_WORD", "RECORD_TYPE", "metric_points"]
ITEM_WORD = {"traces": "spans", "metrics": "metric_points", "logs": "log_records"}


def metric_points(records) -> int:
    """Data points in a set of metric records (the Collector counts metrics
    in points)."""
    from otelplug import codec
    fast = getattr(codec, "metric_point_count", None)
    if fast is not None:
        return fast(records)
    return sum(len(codec.decode_metric(p).points) for p in records.payloads())
