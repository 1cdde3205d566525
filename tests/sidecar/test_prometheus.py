"""prometheus exporter: name translation, the multi-process merge (sums
across processes, no counter reset on worker restart or expiry), both
exposition formats, and a real Prometheus server scraping a sidecar fed by
three worker processes, with a worker restart in the middle."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (AggregationTemporality, InMemoryMetricReader)
from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.resources import Resource

from otelplug import codec
from otelplug.sidecar.config.errors import ConfigErrors
from otelplug.sidecar.config.model import load
from otelplug.codec.recordset import RecordSet
from otelplug.sidecar.exporters import prometheus as prom
from otelplug.sidecar.exporters.prometheus import exposition, naming
from otelplug.sidecar.factories import Registry
from otelplug.sidecar.service import Service
from tests.requirements import require_executable
from tests.waiting import wait_for as _wait_for
from tests.sidecar.helpers import make

ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "apt-get update && apt-get install -y prometheus  (provides prometheus and promtool)"


# -- helpers -------------------------------------------------------------------
def metric_records(data, pid, extra_resource=None) -> RecordSet:
    """SDK MetricsData as the ring records a process with ``pid`` writes."""
    defs, parts = {}, []
    for rm in data.resource_metrics:
        res = rm.resource
        if extra_resource:
            res = res.merge(Resource(extra_resource))
        rp = codec.encode_resource(res, pid)
        rk = codec.definition_key(rp)
        defs[rk] = rp
        for sm in rm.scope_metrics:
            sp = codec.encode_scope(sm.scope)
            sk = codec.definition_key(sp)
            defs[sk] = sp
            parts += [codec.encode_metric(m, rk, sk) for m in sm.metrics]
    return RecordSet.from_parts("metrics", parts, defs)


class Worker:
    """An in-test stand-in for one producer process."""

    def __init__(self, pid, delta=False, service="shop"):
        kw = {}
        if delta:
            kw["preferred_temporality"] = {Counter: AggregationTemporality.DELTA,
                                           Histogram: AggregationTemporality.DELTA}
        self.reader = InMemoryMetricReader(**kw)
        self.pid = pid
        mp = MeterProvider(resource=Resource.create({"service.name": service}),
                           metric_readers=[self.reader])
        m = mp.get_meter("shop.scope", "1.0")
        self.counter = m.create_counter("orders", unit="{order}", description="Orders placed")
        self.hist = m.create_histogram("latency", unit="s",
                                       explicit_bucket_boundaries_advisory=[0.1, 1.0])
        self.updown = m.create_up_down_counter("sessions")
        self.gauge = m.create_gauge("temperature", unit="Cel")

    def records(self):
        return metric_records(self.reader.get_metrics_data(), self.pid)


def parse(text: str) -> dict:
    """Samples of an exposition: {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels = frozenset()
        if rest:
            pairs = rest.rstrip("}").split('",')
            labels = frozenset(tuple(p.rstrip('"').split('="', 1)) for p in pairs if p)
        out[(name, labels)] = float(value)
    return out


def total(samples, name, **want) -> float:
    return sum(v for (n, labels), v in samples.items()
               if n == name and all((k, w) in labels for k, w in want.items()))


def registry() -> Registry:
    """Only the components these tests use (others' modules stay out of the way)."""
    from otelplug.sidecar.receivers import shm
    return Registry([shm.factory, prom.factory])


def exporter(**cfg):
    cfg.setdefault("endpoint", "127.0.0.1:0")
    return make(prom.factory, cfg, signal="metrics")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# -- names -------------------------------------------------------------------------
@pytest.mark.parametrize("name,unit,kind,mono,expected", [
    ("http.server.request.duration", "s", "histogram", False, "http_server_request_duration_seconds"),
    ("system.network.io", "By", "sum", True, "system_network_io_bytes_total"),
    ("requests", "{request}", "sum", True, "requests_total"),
    ("requests_total", "1", "sum", True, "requests_total"),
    ("cpu.utilization", "1", "gauge", False, "cpu_utilization_ratio"),
    ("throughput", "By/s", "gauge", False, "throughput_bytes_per_second"),
    ("speed", "m/h", "gauge", False, "speed_meters_per_hour"),
    ("weird-name!x", "", "gauge", False, "weird_name_x"),
    ("2xx.count", "", "sum", False, "_2xx_count"),
    ("queue", "ms", "sum", False, "queue_milliseconds"),
    ("disk.usage", "%", "gauge", False, "disk_usage_percent"),
    ("temp", "Cel", "gauge", False, "temp_celsius"),
    # "total" moves to the end; a unit word already in the name is not repeated
    ("total.seconds.spent", "s", "sum", True, "seconds_spent_total"),
])
def test_metric_names_as_collector(name, unit, kind, mono, expected):
    assert naming.metric_name(name, unit, kind, mono) == expected


def test_namespace_and_no_suffixes():
    assert naming.metric_name("a.b", "s", "sum", True, "ns") == "ns_a_b_seconds_total"
    assert naming.metric_name("a.b:c", "s", "sum", True, "", add_suffixes=False) == "a_b:c"


@pytest.mark.parametrize("key,label", [
    ("http.method", "http_method"), ("0key", "key_0key"), ("_private", "key_private"),
    ("__reserved", "__reserved"), ("ünï", "key_n_"), ("a-b c", "a_b_c")])
def test_label_names_as_collector(key, label):
    assert naming.label_name(key) == label


def test_colliding_attributes_join_values():
    assert naming.labels_from_attributes({"a.b": "1", "a_b": "2", "n": True, "l": ("x", 2)}) == {
        "a_b": "1;2", "n": "true", "l": '["x",2]'}


# -- merge -----------------------------------------------------------------------------
def test_counters_and_histograms_sum_across_processes():
    exp = exporter()
    w1, w2 = Worker(101), Worker(102)
    w1.counter.add(5, {"route": "/a"})
    w2.counter.add(7, {"route": "/a"})
    w2.counter.add(1, {"route": "/b"})
    for v in (0.05, 0.5, 5.0):
        w1.hist.record(v)
    w2.hist.record(0.05)
    exp.consume(w1.records())
    exp.consume(w2.records())
    s = parse(exp.exposition()[0].decode())
    assert total(s, "orders_total", route="/a") == 12
    assert total(s, "orders_total", route="/b") == 1
    assert total(s, "latency_seconds_count") == 4
    assert total(s, "latency_seconds_bucket", le="0.1") == 2
    assert total(s, "latency_seconds_bucket", le="1") == 3
    assert total(s, "latency_seconds_bucket", le="+Inf") == 4
    assert total(s, "latency_seconds_sum") == pytest.approx(5.6)
    # cumulative points repeat: a second export of the same totals changes nothing
    exp.consume(w1.records())
    exp.consume(w2.records())
    assert total(parse(exp.exposition()[0].decode()), "orders_total") == 13


def test_restarted_worker_never_makes_a_counter_go_backwards():
    exp = exporter()
    old = Worker(201)
    old.counter.add(10)
    old.hist.record(0.5)
    exp.consume(old.records())
    # the same process identity restarting (same pid, new start time, lower value)
    again = Worker(201)
    again.counter.add(3)
    again.hist.record(0.5)
    exp.consume(again.records())
    s = parse(exp.exposition()[0].decode())
    assert total(s, "orders_total") == 13
    assert total(s, "latency_seconds_count") == 2
    again.counter.add(2)
    exp.consume(again.records())
    assert total(parse(exp.exposition()[0].decode()), "orders_total") == 15


def test_expired_processes_keep_their_counts_but_lose_their_gauges():
    exp = exporter(metric_expiration="1m")
    clock = exp.store.clock = FakeClock()
    dead, live = Worker(301), Worker(302)
    dead.counter.add(4)
    dead.hist.record(0.5)
    dead.updown.add(3)
    dead.gauge.set(20)
    live.counter.add(6)
    live.updown.add(1)
    live.gauge.set(30)
    exp.consume(dead.records())
    exp.consume(live.records())
    s = parse(exp.exposition()[0].decode())
    assert total(s, "orders_total") == 10
    assert total(s, "sessions") == 4
    assert len([k for k in s if k[0] == "temperature_celsius"]) == 2
    clock.now += 45
    exp.consume(live.records())
    clock.now += 30            # dead: 75s without update > 1m; live: 30s
    s = parse(exp.exposition()[0].decode())
    assert total(s, "orders_total") == 10          # folded into the retained offset
    assert total(s, "latency_seconds_count") == 1
    assert total(s, "sessions") == 1               # an up-down counter's share goes
    temps = {dict(k[1])["process_pid"]: v for k, v in s.items() if k[0] == "temperature_celsius"}
    assert temps == {"302": 30}
    live.counter.add(1)
    exp.consume(live.records())
    assert total(parse(exp.exposition()[0].decode()), "orders_total") == 11


def test_repeated_or_older_points_are_not_taken_for_a_reset():
    """Delivery from the rings is at-least-once: an export seen again after a
    newer one must not look like a restart (which would count it twice)."""
    exp = exporter()
    w = Worker(251)
    w.counter.add(5)
    first = w.records()
    exp.consume(first)
    w.counter.add(5)
    exp.consume(w.records())
    exp.consume(first)                 # redelivered, older than what we have
    assert total(parse(exp.exposition()[0].decode()), "orders_total") == 10


def test_delta_temporality_accumulates():
    exp = exporter()
    w = Worker(401, delta=True)
    w.counter.add(2)
    w.hist.record(0.05)
    exp.consume(w.records())
    w.counter.add(3)
    w.hist.record(2.0)
    exp.consume(w.records())
    s = parse(exp.exposition()[0].decode())
    assert total(s, "orders_total") == 5
    assert total(s, "latency_seconds_count") == 2
    assert total(s, "latency_seconds_bucket", le="0.1") == 1


@pytest.mark.parametrize("mode,expected", [("sum", 50), ("max", 30), ("min", 20), ("last", 30)])
def test_gauge_aggregation(mode, expected):
    exp = exporter(gauge_aggregation=mode)
    clock = exp.store.clock = FakeClock()
    a, b = Worker(501), Worker(502)
    a.gauge.set(20)
    exp.consume(a.records())
    clock.now += 1
    b.gauge.set(30)
    exp.consume(b.records())
    s = parse(exp.exposition()[0].decode())
    rows = [(k, v) for k, v in s.items() if k[0] == "temperature_celsius"]
    assert len(rows) == 1 and rows[0][1] == expected
    assert "process_pid" not in dict(rows[0][0][1])


def test_labels_const_namespace_resource_conversion_and_target_info():
    exp = exporter(namespace="app", const_labels={"region": "eu"},
                   resource_to_telemetry_conversion={"enabled": True})
    w = Worker(601)
    w.counter.add(1, {"route": "/x"})
    exp.consume(w.records())
    s = parse(exp.exposition()[0].decode())
    (name, labels), = [k for k in s if k[0] == "app_orders_total"]
    labels = dict(labels)
    assert labels["region"] == "eu" and labels["job"] == "shop" and labels["route"] == "/x"
    assert labels["otel_scope_name"] == "shop.scope" and labels["otel_scope_version"] == "1.0"
    assert labels["telemetry_sdk_language"] == "python"
    assert "process_pid" not in labels                  # identity attributes never become labels
    info = [dict(k[1]) for k in s if k[0] == "target_info"]
    assert info and info[0]["job"] == "shop" and "process_pid" not in info[0]


def test_openmetrics_by_content_negotiation():
    exp = exporter()
    w = Worker(701)
    w.counter.add(2)
    w.hist.record(0.5)
    exp.consume(w.records())
    text, ctype = exp.exposition("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    assert ctype.startswith("text/plain; version=0.0.4")
    assert b"# TYPE orders_total counter" in text and b"# EOF" not in text
    om, ctype = exp.exposition("application/openmetrics-text;version=1.0.0,"
                               "application/openmetrics-text;version=0.0.1;q=0.75,"
                               "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    assert ctype.startswith("application/openmetrics-text; version=1.0.0")
    om = om.decode()
    assert "# TYPE orders counter\n" in om and "\norders_total{" in om
    assert "# TYPE target info\n" in om and om.endswith("# EOF\n")
    assert not exposition.wants_openmetrics("application/openmetrics-text;q=0")


def test_http_endpoint_serves_both_formats():
    exp = exporter()
    exp.start(None)
    try:
        w = Worker(801)
        w.counter.add(1)
        exp.consume(w.records())
        url = f"http://{exp.address}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            assert b"orders_total" in r.read()
        req = urllib.request.Request(url, headers={"Accept": "application/openmetrics-text"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.headers["Content-Type"].startswith("application/openmetrics-text")
            assert r.read().endswith(b"# EOF\n")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://{exp.address}/other", timeout=5)
    finally:
        exp.shutdown()


def promtool_or_skip():
    return require_executable("promtool", INSTALL_HINT)


def test_promtool_accepts_the_exposition():
    tool = promtool_or_skip()
    exp = exporter(const_labels={"region": "eu"})
    for pid in (901, 902):
        w = Worker(pid)
        w.counter.add(3, {"route": "/a", "weird key": 'quote " and \\ and \n'})
        w.hist.record(0.5)
        w.updown.add(1)
        w.gauge.set(21.5)
        exp.consume(w.records())
    # promtool parses the Prometheus text format only (it rejects OpenMetrics'
    # "info" type); the OpenMetrics output is checked by a real Prometheus
    # scraping it (Prometheus asks for OpenMetrics first) in the test below
    body, _ = exp.exposition(None)
    r = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()


def test_config_errors_name_the_field():
    text = """
receivers: {shm: {}}
exporters:
  prometheus:
    endpoint: nowhere
    const_labels: {"bad-label": x}
    gauge_aggregation: median
service:
  pipelines:
    metrics: {receivers: [shm], exporters: [prometheus]}
"""
    with pytest.raises(ConfigErrors) as ei:
        load("p.yaml", registry(), text=text)
    msg = str(ei.value)
    assert "exporters::prometheus::gauge_aggregation" in msg and "median" in msg
    text2 = text.replace("    gauge_aggregation: median\n", "")
    with pytest.raises(ConfigErrors) as ei:
        load("p.yaml", registry(), text=text2)
    msg = str(ei.value)
    assert "exporters::prometheus::endpoint" in msg
    assert "exporters::prometheus::const_labels::bad-label" in msg


# -- a real Prometheus -----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_worker(channel):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-m", "tests.sidecar.metric_worker", channel, "200"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def stop_worker(p) -> dict:
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=60)
    return json.loads(out.strip().splitlines()[-1])


class PromAPI:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)["data"]

    def scalar(self, q):
        res = self.get("/api/v1/query", query=q)["result"]
        return float(res[0]["value"][1]) if res else None


def wait_for(fn, what: str):
    """Poll Prometheus's API gently: it is a shared machine."""
    return _wait_for(fn, what=what, interval=0.3)


def test_real_prometheus_sees_true_totals_across_a_worker_restart(tmp_path):
    binary = require_executable("prometheus", INSTALL_HINT)
    tool = promtool_or_skip()
    channel = "promtest"
    eport, pport = free_port(), free_port()
    svc = Service(load("prom.yaml", registry(), text=f"""
receivers: {{shm: {{channels: [{channel}]}}}}
exporters: {{prometheus: {{endpoint: "127.0.0.1:{eport}", metric_expiration: 3s}}}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    metrics: {{receivers: [shm], exporters: [prometheus]}}
"""))
    # a short expiry, so the stopped worker's series expire (and fold into
    # the retained offsets) while the test runs
    exp = svc.exporters[("prometheus", "metrics")]
    accepts = []
    serve = exp.exposition
    exp.exposition = lambda accept=None: (accepts.append(accept), serve(accept))[1]
    svc.start()
    (tmp_path / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}}
scrape_configs:
  - job_name: otelplug
    static_configs: [{{targets: ["127.0.0.1:{eport}"]}}]
""")
    log = open(tmp_path / "prometheus.log", "wb")
    server = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'data'}",
                               f"--web.listen-address=127.0.0.1:{pport}"],
                              stdout=log, stderr=subprocess.STDOUT)
    workers = []
    api = PromAPI(pport)
    try:
        workers = [start_worker(channel) for _ in range(3)]
        wait_for(lambda: api.get("/api/v1/status/buildinfo"), what="prometheus to start")
        seen = []

        def items():
            v = api.scalar("sum(work_items_total)")
            if v is not None:
                seen.append(v)
            return v

        wait_for(lambda: (items() or 0) > 0, what="a first scrape with data")
        assert api.scalar("count(work_queue_depth)") >= 3      # a gauge per live process
        for _ in range(3):
            time.sleep(0.7)
            items()
        finished = [stop_worker(workers.pop(0))]               # the restart: one goes ...
        workers.append(start_worker(channel))                  # ... a new process comes
        for _ in range(8):        # > metric_expiration: the stopped worker's shares fold
            time.sleep(0.7)
            items()
        # the live exposition passes promtool (text format: all promtool parses)
        body = urllib.request.urlopen(f"http://127.0.0.1:{eport}/metrics", timeout=10).read()
        r = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True,
                           timeout=60)
        assert r.returncode == 0, (r.stdout + r.stderr).decode()
        finished += [stop_worker(p) for p in workers]
        workers = []
        want_items = sum(sum(f["items"].values()) for f in finished)
        want_a = sum(f["items"]["/a"] for f in finished)
        want_count = sum(f["count"] for f in finished)
        want_le = sum(f["le_0.1"] for f in finished)
        want_sum = sum(f["sum"] for f in finished)
        wait_for(lambda: items() == want_items, what=f"sum(work_items_total) == {want_items}")
        wait_for(lambda: api.scalar("sum(work_duration_seconds_count)") == want_count,
                 what="the histogram count")
        assert api.scalar('sum(work_items_total{route="/a"})') == want_a
        assert api.scalar('sum(work_duration_seconds_bucket{le="0.1"})') == want_le
        assert api.scalar("sum(work_duration_seconds_sum)") == pytest.approx(want_sum, rel=1e-9)
        # never backwards: neither in what we sampled nor in Prometheus's own view
        assert seen == sorted(seen), seen
        assert api.scalar("sum(resets(work_items_total[5m]))") == 0
        assert api.scalar("sum(resets(work_duration_seconds_count[5m]))") == 0
        targets = api.get("/api/v1/targets")["activeTargets"]
        assert [t["health"] for t in targets] == ["up"], targets
        # Prometheus asked for (and so parsed) OpenMetrics
        assert any(exposition.wants_openmetrics(a) for a in accepts), accepts[:3]
    finally:
        for p in workers:
            p.kill()
            p.wait()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        svc.shutdown()
