"""Alert times in the health report, from alerts shaped like the alert
engine's view (otelplug/analytics/alerts.py: Alert)."""
from __future__ import annotations

import numpy as np

from otelplug.report import compute
from otelplug.report.source import Spans, Telemetry


def _empty() -> Telemetry:
    e = np.array([], dtype=object)
    return Telemetry(Spans(e, e, np.array([], np.int64), np.array([], float), np.array([], bool),
                           np.array([], bool)))


def test_time_to_acknowledge_and_resolve():
    alerts = [
        {"id": "a1", "rule": "high_errors", "state": "resolved", "active_since": 990.0, "fired_at": 1000.0,
         "ack": {"by": "ops", "at": 1030.0}, "resolved_at": 1100.0, "labels": {}},
        {"id": "a2", "rule": "slow", "state": "firing", "active_since": 1500.0, "fired_at": None,
         "ack": None, "resolved_at": None, "labels": {}},
        {"id": "old", "rule": "slow", "state": "resolved", "active_since": 10.0, "fired_at": 20.0,
         "ack": None, "resolved_at": 30.0, "labels": {}},
    ]
    rep = compute.health(_empty(), 900.0, 2000.0, alerts=alerts)
    by_id = {a["id"]: a for a in rep["alerts"]}
    assert set(by_id) == {"a1", "a2"}                       # "old" began before the range
    assert by_id["a1"]["time_to_acknowledge_s"] == 30.0 and by_id["a1"]["time_to_resolve_s"] == 100.0
    assert by_id["a2"]["time_to_acknowledge_s"] is None and by_id["a2"]["name"] == "slow"
    assert compute.health(_empty(), 900.0, 2000.0)["alerts"] is None   # no API: not known
