"""Trace analysis over span columns: the tree of each trace, its critical
path, self vs child time, the latency breakdown per operation and service,
and the bad input met (``analyse`` for one trace, ``analyse_many`` for
many in one pass), and trace assembly (``assembly``).  Pure numpy; no
sidecar imports."""
from .analysis import Breakdown, ForestAnalysis, TraceAnalysis, TraceSpans, analyse, analyse_many
from .tree import Anomalies

__all__ = ["Anomalies", "Breakdown", "ForestAnalysis", "TraceAnalysis", "TraceSpans", "analyse",
           "analyse_many"]
