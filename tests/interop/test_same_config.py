"""One YAML (same_config.yaml), two programs: the real Collector and
``otelplug run``. Both must accept it (``validate``), and given the very
same OTLP requests they must make the same sampling decisions
(probabilistic_sampler in hash_seed and proportional mode, tail_sampling
policies) -- down to the tracestate they write -- and compute the same
span metrics (names, attributes, counts, histogram buckets), in OTLP
and in the Prometheus exposition.
"""
from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.interop import otlp_compare as cmp
from tests.interop.traffic import make_requests, send
from tests.peers import run

CONFIG = Path(__file__).with_name("same_config.yaml")
# Since v0.136 the Collector's spanmetrics adds a ``collector.instance.id``
# dimension (a random UUID per Collector process) behind a beta feature
# gate; otelplug has no such dimension yet, so the gate is turned off here
# and the difference is tracked in bench/README.md's interop notes.
COLLECTOR_ARGS = ["--feature-gates=-connector.spanmetrics.includeCollectorInstanceID"]


def env_for(out_dir: Path) -> tuple[dict, int]:
    grpc_port, http_port = run.free_port(), run.free_port()
    out_dir.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
            "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}", "OUT_DIR": str(out_dir),
            "PROMETHEUS_ENDPOINT": f"127.0.0.1:{run.free_port()}"}, grpc_port


def test_both_accept_the_same_yaml(tmp_path):
    env, _ = env_for(tmp_path)
    col = run.collector_validate(CONFIG, env=env)
    assert col.returncode == 0, col.stdout + col.stderr
    side = run.sidecar_validate(CONFIG, env=env)
    assert side.returncode == 0, side.stdout + side.stderr


def test_both_reject_the_same_mistake(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.read_text().replace("sampling_percentage: 25\n    hash_seed",
                                              "sampling_percentage: -5\n    hash_seed"))
    env, _ = env_for(tmp_path)
    col = run.collector_validate(bad, env=env)
    side = run.sidecar_validate(bad, env=env)
    assert col.returncode != 0 and "negative" in col.stderr + col.stdout
    assert side.returncode != 0 and "negative" in side.stderr + side.stdout
    assert "probabilistic_sampler/hash_seed" in side.stderr + side.stdout


def latest_points(items: list[dict]) -> list[dict]:
    """The last value of each span-metrics series (cumulative), without
    the timestamps, which differ between any two runs, and without min and
    max: otelplug reports them for explicit-bucket histograms too, the
    Collector only for exponential ones (optional OTLP fields). Sums are
    rounded to 1e-6 ms: adding the same durations in another order
    (numpy over a batch, the Collector span by span) differs in the last
    bits."""
    last = {}
    for item in items:
        point = dict(item["point"])
        for key in ("start_time_unix_nano", "time_unix_nano", "min", "max"):
            point.pop(key, None)
        if "sum" in point:
            point["sum"] = round(point["sum"], 6)
        series = (item["metric"]["name"], cmp.canonical([point.get("attributes", [])])[0])
        last[series] = {**item, "point": point}
    return list(last.values())


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Both programs fed the same requests; their output folders."""
    requests = make_requests()
    dirs, scrape_urls = {}, {}
    programs = []
    base = tmp_path_factory.mktemp("same-config")
    try:
        for name in ("collector", "otelplug"):
            env, port = env_for(base / name)
            if name == "collector":
                program = run.collector(CONFIG.read_text(), base, ports=[port], env=env,
                                        args=COLLECTOR_ARGS)
            else:
                program = run.sidecar(CONFIG.read_text(), base, ports=[port], env=env)
            programs.append(program)
            send(port, requests)
            dirs[name] = base / name
            scrape_urls[name] = f"http://{env['PROMETHEUS_ENDPOINT']}/metrics"
        n_spans = 3 * 300

        def spanmetrics_complete(d):
            items = cmp.flatten("metrics", cmp.read_json_lines(d / "spanmetrics.json", "metrics"))
            calls = [i for i in latest_points(items) if i["metric"]["name"].endswith(".calls")]
            return sum(int(i["point"]["as_int"]) for i in calls) == n_spans

        for name, d in dirs.items():
            # tail sampling decides after decision_wait (1 s); span metrics flush every 0.5 s
            program = programs[list(dirs).index(name)]
            run.wait_for(lambda: spanmetrics_complete(d) and (d / "tail.json").exists(), 30,
                         lambda: f"{name}'s outputs in {d}\n{program.output()}")
        # every pipeline has had its decision round and flush; give the file
        # exporters' flush a bound by waiting for the tail output to stop growing
        for d in dirs.values():
            sizes = []
            run.wait_for(lambda: sizes.append((d / "tail.json").stat().st_size) or
                         (len(sizes) > 20 and sizes[-1] == sizes[-20]), 30, f"{d}/tail.json to settle")
        yield SimpleNamespace(dirs=dirs, scrapes={
            name: urllib.request.urlopen(url, timeout=10).read().decode()
            for name, url in scrape_urls.items()})
    finally:
        for p in programs:
            p.stop()


def traces_in(path: Path) -> list[dict]:
    return cmp.flatten("traces", cmp.read_json_lines(path, "traces"))


@pytest.mark.parametrize("pipeline", ["hash_seed", "proportional", "tail"])
def test_same_sampling_decisions(outputs, pipeline):
    col = traces_in(outputs.dirs["collector"] / f"{pipeline}.json")
    side = traces_in(outputs.dirs["otelplug"] / f"{pipeline}.json")
    assert 0 < len(col) < 900, f"{pipeline}: the Collector kept {len(col)} of 900 spans"
    kept = lambda items: sorted({i["span"]["trace_id"] for i in items})  # noqa: E731
    assert kept(side) == kept(col), f"{pipeline}: different traces kept"
    cmp.assert_same(pipeline, side, col)


def test_same_span_metrics(outputs):
    col = latest_points(cmp.flatten("metrics", cmp.read_json_lines(
        outputs.dirs["collector"] / "spanmetrics.json", "metrics")))
    side = latest_points(cmp.flatten("metrics", cmp.read_json_lines(
        outputs.dirs["otelplug"] / "spanmetrics.json", "metrics")))
    assert {i["metric"]["name"] for i in col} == {i["metric"]["name"] for i in side}
    cmp.assert_same("spanmetrics", side, col)


LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def span_metric_samples(exposition: str) -> dict:
    """{(name, labels): value} of the span metrics series.  Labels with
    an empty value are left out: Prometheus treats them as absent (the
    Collector writes ``otel_scope_version=""``, otelplug leaves it out).
    So is ``instance``: the Collector maps each resource's
    ``service.instance.id`` to it; otelplug by default counts that
    attribute among the per-process ones it merges away
    (``process_identity_attributes``, which the Collector does not have)."""
    out = {}
    for line in exposition.splitlines():
        if line.startswith("traces_span_metrics"):
            series, _, value = line.rpartition(" ")
            name, _, labels = series.partition("{")
            kept = tuple(sorted((k, v) for k, v in LABEL.findall(labels) if v and k != "instance"))
            out[(name, kept)] = float(value)
    return out


def test_same_prometheus_exposition(outputs):
    col = span_metric_samples(outputs.scrapes["collector"])
    side = span_metric_samples(outputs.scrapes["otelplug"])
    assert col, outputs.scrapes["collector"][:2000]
    assert sorted(side) == sorted(col)
    for series, value in col.items():
        assert side[series] == pytest.approx(value, rel=1e-9), series
