"""Trace analysis over span columns: the tree of one trace, its critical
path, self vs child time, the latency breakdown per operation and service,
and the bad input it met (``analyse``).  Pure numpy; no sidecar imports."""
from .analysis import Breakdown, TraceAnalysis, TraceSpans, analyse
from .tree import Anomalies

__all__ = ["Anomalies", "Breakdown", "TraceAnalysis", "TraceSpans", "analyse"]
