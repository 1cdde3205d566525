"""Rule evaluators and the alert engine (pure parts), with a fake clock
passed explicitly: no sleeping."""
import json
from types import SimpleNamespace as NS_

import numpy as np
import pytest

from otelplug.analytics.alerts import AlertEngine, Rule, UnknownAlert
from otelplug.analytics.anomaly import Detector
from otelplug.analytics.rules import (AbsenceEval, AnomalyEval, BurnRateEval, CountEval, ItemBatch,
                                      SequenceEval, ThresholdEval)
from otelplug.analytics.windows import StreamAggregator, StreamConfig, WindowSpec

S = 1_000_000_000


def batch(times_s, names, errors=None, attrs=None, signal="traces"):
    uniq = sorted(set(names))
    attrs = attrs or [{}] * len(names)
    return ItemBatch(signal, (np.asarray(times_s, float) * S).astype(np.int64),
                     np.array([uniq.index(n) for n in names]), uniq,
                     np.asarray(errors if errors is not None else [False] * len(names), bool),
                     lambda i, k: attrs[i].get(k))


def m(**kw):
    return NS_(signal=kw.get("signal", ""), name=kw.get("name", []), status=kw.get("status", ""),
               attributes=kw.get("attributes", {}))


def test_count_rule_counts_matching_items_within_the_window():
    ev = CountEval(NS_(match=m(name="pay", status="error"), within=60.0, op=">", value=2))
    ev.observe_items(batch([1, 2, 3, 4], ["pay", "pay", "pay", "other"], [1, 1, 1, 1]), 5 * S)
    assert ev.active(5 * S) == {(): 3.0}
    assert ev.active(63 * S) == {(): 1.0} or ev.active(63 * S) == {}
    assert ev.active(200 * S) == {}


def test_matcher_reads_attributes_only_of_candidates():
    read = []
    b = batch([1, 2], ["a", "b"], attrs=[{"k": "x"}, {"k": "y"}])
    inner = b.attribute
    b.attribute = lambda i, k: (read.append(i), inner(i, k))[1]
    ev = CountEval(NS_(match=m(name="b", attributes={"k": "y"}), within=60.0, op=">=", value=1))
    ev.observe_items(b, 3 * S)
    assert read == [1] and ev.active(3 * S) == {(): 1.0}


def test_sequence_not_followed_and_followed():
    cfg = dict(first=m(name="gen.start"), then=m(name="gen.done"), key="gen.id", within=10.0)
    nf = SequenceEval(NS_(followed=False, **cfg))
    fw = SequenceEval(NS_(followed=True, **cfg))
    b = batch([0, 1, 3], ["gen.start", "gen.start", "gen.done"],
              attrs=[{"gen.id": "a"}, {"gen.id": "b"}, {"gen.id": "a"}])
    for ev in (nf, fw):
        ev.observe_items(b, 3 * S)
    assert fw.active(3 * S) == {(("gen.id", "a"),): 3.0}
    assert nf.active(5 * S) == {}
    assert nf.active(12 * S) == {(("gen.id", "b"),): 11.0}
    assert nf.active(13 * S) == {}          # reported once


def test_absence_rule():
    ev = AbsenceEval(NS_(match=m(name="heartbeat"), within=30.0), 0)
    assert ev.active(29 * S) == {}
    assert ev.active(31 * S) == {(): 31.0}
    ev.observe_items(batch([40], ["heartbeat"]), 41 * S)
    assert ev.active(50 * S) == {}


def test_burn_rate_multiwindow():
    ev = BurnRateEval(NS_(match=m(name="api"), objective=0.999, windows=[]))
    t = np.arange(0, 3600, 1.0)
    errs = t > 3300                              # errors only in the last 5 minutes
    ev.observe_items(batch(t, ["api"] * len(t), errs), 3600 * S)
    # 1h: 299/3600 = 8.3% / 0.1% = 83x; 5m: 100%: both above 14.4
    got = ev.active(3600 * S)
    assert list(got) == [(("slo.window", "3600s/300s"),)] and got[next(iter(got))] > 14.4
    # 5 min later the 5m window has cleared; the 30m one still burns at 6x+
    assert list(ev.active(4000 * S)) == [(("slo.window", "21600s/1800s"),)]
    assert ev.active(5500 * S) == {}


def _results(values, window="w"):
    a = StreamAggregator(StreamConfig([WindowSpec(window, "tumbling", size_ns=10 * S)], delay_ns=0))
    out = []
    for k, v in enumerate(values):
        t = np.full(4, k * 10 + 1) * S
        a.add([("svc",)], lambda j: {"service.name": "svc"}, np.zeros(4, int), t,
              np.full(4, v * 1e6), np.array([1.0, 0, 0, 0]), k * 10 * S)
        out.append(a.advance((k + 1) * 10 * S + 6 * S))
    return a, out


def test_threshold_and_anomaly_over_window_results():
    a, per_window = _results([5] * 10 + [500])
    th = ThresholdEval(NS_(window="w", metric="p99", op=">", value=100e6, where={"service.name": "svc"}))
    an = AnomalyEval(NS_(window="w", metric="p99", score=6.0, where={}))
    det = Detector(min_samples=8)
    for res in per_window:
        scores = {}
        for r in res:
            for i in range(len(r)):
                key = ("w", "p99", tuple(sorted(a.groups.attributes[int(r.group[i])].items())))
                scores[key] = det.observe(key[2], float(r.quantiles[i, 2]))
        th.observe_windows(res, lambda g: a.groups.attributes[g])
        an.observe_windows(res, lambda g: a.groups.attributes[g], scores)
        if res[0].max[0] < 100e6:
            assert th.active(0) == {} and an.active(0) == {}
    assert list(th.active(0)) == [(("service.name", "svc"),)]
    assert list(an.active(0)) == [(("service.name", "svc"),)]


def test_detector_learning_and_flat_line():
    d = Detector(min_samples=3, threshold=6)
    states = [d.observe(("s",), 10.0).state for _ in range(5)]
    assert states == ["learning"] * 3 + ["normal"] * 2
    assert d.observe(("s",), 10.0).score == 0.0
    s = d.observe(("s",), 12.0)                      # MAD 0: floor 5% of 10
    assert s.state == "anomalous" and s.score == pytest.approx(4.0 / 1.0 * 1.0, rel=1e-6) or s.score == 4.0


class Switch:
    def __init__(self):
        self.on = {}

    def active(self, now_ns):
        return self.on


def test_engine_pending_firing_resolved_with_for_and_keep_firing_for(tmp_path):
    events = []
    sw = Switch()
    eng = AlertEngine(str(tmp_path / "s.json"), on_event=events.append)
    eng.set_rules([Rule("Hot", sw, {"severity": "page"}, {"summary": "hot"}, for_s=10, keep_firing_for_s=5)])
    sw.on = {(("svc", "a"),): 1.0}
    eng.evaluate(100)
    [a] = eng.list_alerts()
    assert a["state"] == "pending" and a["labels"] == {"alertname": "Hot", "severity": "page", "svc": "a"}
    eng.evaluate(109)
    assert eng.list_alerts()[0]["state"] == "pending"
    eng.evaluate(110)
    assert eng.list_alerts()[0]["state"] == "firing"
    sw.on = {}
    eng.evaluate(112)
    assert eng.list_alerts()[0]["state"] == "firing"       # keep_firing_for
    eng.evaluate(116)
    assert eng.list_alerts()[0]["state"] == "resolved"
    assert [(e["alert.from"], e["alert.to"]) for e in events if e["event"] == "alert.state_change"] == [
        ("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")]


def test_ack_resolve_silence_and_restart_keeps_state(tmp_path):
    clock = [1000.0]
    path = str(tmp_path / "alerts.json")
    sw = Switch()
    eng = AlertEngine(path, clock=lambda: clock[0])
    eng.set_rules([Rule("R", sw, for_s=0)])
    sw.on = {(("k", "1"),): 3.0, (("k", "2"),): 4.0}
    eng.evaluate()
    ids = {a["labels"]["k"]: a["id"] for a in eng.list_alerts()}
    eng.ack(ids["1"][:6], "ann", "looking", expires_s=60)
    s = eng.silence({"k": "2"}, 300, "bob", "maintenance")
    assert [a.labels["k"] for a in eng.due(clock[0], 60)] == ["1"]
    with pytest.raises(UnknownAlert):
        eng.ack("nope", "x")
    import os
    import stat
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600      # owner-only
    # restart: a new engine reads the file
    eng2 = AlertEngine(path, clock=lambda: clock[0])
    eng2.set_rules([Rule("R", sw, for_s=0)])
    byk = {a["labels"]["k"]: a for a in eng2.list_alerts()}
    assert byk["1"]["state"] == "firing" and byk["1"]["ack"]["by"] == "ann"
    assert byk["2"]["silenced_by"] == s["id"]
    # manual resolve: stays resolved while the condition holds, ack cleared
    eng2.resolve(ids["1"], "ann")
    clock[0] += 1
    eng2.evaluate()
    a1 = [a for a in eng2.list_alerts() if a["labels"]["k"] == "1"][0]
    assert a1["state"] == "resolved" and a1["ack"] is None and a1["resolved_by"] == "ann"
    # the condition clears, then comes back: a new pending/firing cycle
    sw.on = {}
    clock[0] += 1
    eng2.evaluate()
    sw.on = {(("k", "1"),): 5.0}
    clock[0] += 1
    eng2.evaluate()
    assert [a["state"] for a in eng2.list_alerts() if a["labels"]["k"] == "1"] == ["firing"]
    # ack expiry
    eng2.ack(ids["1"], "ann", expires_s=5)
    clock[0] += 10
    eng2.evaluate()
    assert [a["ack"] for a in eng2.list_alerts() if a["labels"]["k"] == "1"] == [None]


def test_broken_state_file_is_reported_not_fatal(tmp_path, caplog):
    p = tmp_path / "alerts.json"
    p.write_text("{not json")
    eng = AlertEngine(str(p))
    assert eng.list_alerts() == [] and "ignoring the state file" in caplog.text
    eng.set_rules([])
    assert json.loads(p.read_text())["version"] == 1


def test_rules_status_shows_a_rule_that_matches_nothing():
    eng = AlertEngine(None)
    quiet = CountEval(NS_(match=m(name="never"), within=60.0, op=">", value=0))
    busy = CountEval(NS_(match=m(name="pay"), within=60.0, op=">", value=100))
    for ev in (quiet, busy):
        ev.observe_items(batch([1, 2], ["pay", "pay"]), 3 * S)
    eng.set_rules([Rule("Quiet", quiet, kind="count"), Rule("Busy", busy, kind="count")])
    got = {r["name"]: r for r in eng.rules_status()}
    assert got["Quiet"]["matched"] == 0 and got["Quiet"]["last_match"] is None
    assert got["Busy"]["matched"] == 2 and got["Busy"]["last_match"] == 3.0


def test_detector_many_series_at_once_equals_one_by_one():
    rng = np.random.default_rng(2)
    a, b = Detector(min_samples=4, history=6), Detector(min_samples=4, history=6)
    for step in range(15):
        keys = [("s", i % 5) for i in range(7)]           # two series twice per call
        vals = rng.normal(10, 1, 7)
        many = a.observe_many(keys, vals)
        one = [b.observe(k, v) for k, v in zip(keys, vals)]
        assert [(s.state, round(s.score, 9)) for s in many] == [(s.state, round(s.score, 9)) for s in one]


def test_restored_alerts_are_not_resolved_during_the_restore_grace(tmp_path):
    path = str(tmp_path / "s.json")
    clock = [100.0]
    sw = Switch()
    eng = AlertEngine(path, clock=lambda: clock[0])
    eng.set_rules([Rule("R", sw)])
    sw.on = {(): 1.0}
    eng.evaluate()
    # restart: the rule's data is gone (inactive), the alert keeps firing for the grace
    sw2 = Switch()
    eng2 = AlertEngine(path, clock=lambda: clock[0], restore_grace_s=30)
    eng2.set_rules([Rule("R", sw2)])
    clock[0] += 10
    eng2.evaluate()
    assert [a["state"] for a in eng2.list_alerts()] == ["firing"]
    clock[0] += 25
    eng2.evaluate()
    assert [a["state"] for a in eng2.list_alerts()] == ["resolved"]


def test_sequence_open_starts_are_bounded_and_the_dropped_counted():
    ev = SequenceEval(NS_(first=m(name="a"), then=m(name="b"), key="id", within=60.0, followed=False),
                      max_open=3)
    ev.observe_items(batch(list(range(5)), ["a"] * 5, attrs=[{"id": str(i)} for i in range(5)]), 5 * S)
    assert list(ev.open) == ["2", "3", "4"]
    assert ev.status() == {"matched": 5, "last_match": 5.0, "open": 3, "dropped_open": 2}
