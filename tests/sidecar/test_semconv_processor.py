"""The semconv processor and the semconv_router connector.

* spans from real instrumentation libraries (requests against a local
  http.server, flask through its test client, sqlite3 in memory), in their
  default and their opted-in conventions, checked against upstream
  semantic-conventions ``main`` with the findings they really deserve;
* each action (pass, annotate, drop, route) on hand-made registries, the
  shape cache staying exact (enum values, value types, cache bounds), logs
  and metrics, self-metrics and statistics;
* config errors with their paths; the processor in a real sidecar (rings ->
  shm receiver -> batch -> semconv -> file exporter) end to end.
"""
from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otelplug import codec
from otelplug.codec import model
from otelplug.sidecar.component import Factory, Kind, PipelineID
from otelplug.sidecar.config import ConfigErrors
from otelplug.sidecar.config.decode import decode
from otelplug.sidecar.config.model import load
from otelplug.sidecar.consumer import Consumer
from otelplug.codec.recordset import RecordSet
from otelplug.sidecar.processors import semconv
from otelplug.sidecar.semconvcheck.findings import FINDINGS_ATTRIBUTE, LEVEL_ATTRIBUTE
from otelplug.sidecar.factories import Registry
from otelplug.sidecar.rewrite import encode_log, encode_resource
from otelplug.sidecar.service import Service
from otelplug.sidecar.telemetry import Telemetry

from tests.requirements import require_shared
from tests.waiting import wait_for

from .helpers import Capture, counting_ack, make, records_from_spans

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def upstream_main() -> str:
    return str(require_shared("semconv-upstream", "main"))


ALL_ANNOTATE = {"violation": "annotate", "improvement": "annotate", "information": "annotate"}


def run(records, registry, actions=None, telemetry=None, **cfg):
    """Records through a semconv processor; (output records, processor, telemetry)."""
    tel = telemetry or Telemetry()
    cap = Capture()
    p = make(semconv.factory, {"registry": registry, "actions": actions or {}, **cfg}, cap, telemetry=tel)
    p.consume(records)
    out = RecordSet.concat(cap.got) if cap.got else None
    return out, p, tel


def decoded(records):
    dec = {"traces": codec.decode_span, "logs": codec.decode_log}[records.signal]
    return [dec(p) for p in records.payloads()]


def tags(item) -> set:
    return set(item.attributes.get(FINDINGS_ATTRIBUTE, ()))


def findings(tel, **labels):
    fam = tel.get("semconv_findings")
    keys = ("component", "id", "level", "signal", "attribute_or_metric")
    return sum(v for k, v in fam.samples() if all(dict(zip(keys, k))[n] == x for n, x in labels.items()))


# ------------------------------------------------------------ instrumentation

@pytest.fixture
def semconv_mode(monkeypatch):
    """Select the instrumentations' semantic-convention mode
    (OTEL_SEMCONV_STABILITY_OPT_IN), read once per process by
    opentelemetry-instrumentation: reset it around the test."""
    from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability as S

    def set_mode(value: str | None):
        if value:
            monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", value)
        else:
            monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
        S._initialized = False
        S._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING = {}
        S._initialize()

    yield set_mode
    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    S._initialized = False
    S._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING = {}
    S._initialize()


def provider():
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    return tp, mem


@pytest.fixture
def http_server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code = 404 if "missing" in self.path else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def requests_spans(base):
    import requests
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    tp, mem = provider()
    RequestsInstrumentor().instrument(tracer_provider=tp)
    try:
        assert requests.get(f"{base}/items?page=2").status_code == 200
        assert requests.get(f"{base}/missing").status_code == 404
    finally:
        RequestsInstrumentor().uninstrument()
    return list(mem.get_finished_spans())


def sqlite_spans():
    import sqlite3

    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
    tp, mem = provider()
    SQLite3Instrumentor().instrument(tracer_provider=tp)
    try:
        db = sqlite3.connect(":memory:")
        cur = db.cursor()
        cur.execute("create table t (x integer)")
        cur.execute("insert into t values (?)", (1,))
        cur.execute("select x from t")
        db.close()
    finally:
        SQLite3Instrumentor().uninstrument()
    return list(mem.get_finished_spans())


def flask_app(tp):
    from flask import Flask
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    app = Flask("shop")

    @app.route("/hello/<name>")
    def hello(name):
        return f"hi {name}"

    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    FlaskInstrumentor().instrument_app(app, tracer_provider=tp)
    return app


def flask_spans():
    import logging
    logging.getLogger("shop").setLevel(logging.CRITICAL)
    tp, mem = provider()
    client = flask_app(tp).test_client()
    assert client.get("/hello/bob?x=1").status_code == 200
    assert client.get("/boom").status_code == 500
    return {s.attributes.get("http.route"): s for s in mem.get_finished_spans()}


def deprecated(*names):
    """What an attribute deprecated in upstream main yields: one
    ``deprecated`` (violation), not also ``not_stable`` (issue 16 #10)."""
    return {f"deprecated:{n}" for n in names}


def test_requests_default_conventions_are_deprecated(upstream_main, semconv_mode, http_server):
    semconv_mode(None)
    spans = requests_spans(http_server)
    assert {s.attributes["http.status_code"] for s in spans} == {200, 404}
    out, p, tel = run(records_from_spans(spans), upstream_main, ALL_ANNOTATE)
    for s in decoded(out):
        # http.method, http.url and http.status_code were renamed; the one
        # attribute already on the new conventions is user_agent.original
        assert tags(s) == deprecated("http.method", "http.url", "http.status_code")
        assert s.attributes[LEVEL_ATTRIBUTE] == "violation"
        assert "user_agent.original" in s.attributes
    assert findings(tel, id="deprecated", level="violation", signal="span", attribute_or_metric="http.url") == 2
    assert findings(tel, attribute_or_metric="user_agent.original") == 0
    # the resource (service.name and telemetry.sdk.*, all stable) is clean and checked once
    assert findings(tel, signal="resource") == 0
    stats = p.stats()
    assert stats["total_entities_by_type"]["span"] == 2
    assert stats["total_entities_by_type"]["resource"] == 1
    assert stats["seen_registry_attributes"]["http.method"] == 2


def test_requests_stable_conventions(upstream_main, semconv_mode, http_server):
    semconv_mode("http")
    spans = requests_spans(http_server)
    out, _p, tel = run(records_from_spans(spans), upstream_main, ALL_ANNOTATE)
    by_status = {s.attributes["http.response.status_code"]: s for s in decoded(out)}
    assert tags(by_status[200]) == set()             # fully on stable conventions: nothing to say
    assert FINDINGS_ATTRIBUTE not in by_status[200].attributes
    # 404: error.type = "404" is not one of the enum's members (only _OTHER is)
    assert tags(by_status[404]) == {"undefined_enum_variant:error.type"}
    assert by_status[404].attributes[LEVEL_ATTRIBUTE] == "information"
    assert findings(tel, level="violation") == 0


def test_sqlite3_default_and_database_conventions(upstream_main, semconv_mode):
    semconv_mode(None)
    spans = sqlite_spans()
    assert sorted(s.name for s in spans) == ["create", "insert", "select"]
    out, _p, tel = run(records_from_spans(spans), upstream_main, ALL_ANNOTATE)
    for s in decoded(out):
        assert tags(s) == deprecated("db.system", "db.statement")
    assert findings(tel, id="deprecated", attribute_or_metric="db.statement") == 3
    semconv_mode("database")
    spans = sqlite_spans()
    assert {"db.system.name", "db.query.text"} <= set(spans[0].attributes)
    out, _p, tel = run(records_from_spans(spans), upstream_main, ALL_ANNOTATE)
    assert all(tags(s) == set() for s in decoded(out))
    assert findings(tel) == 0


FLASK_OLD = ("http.method", "http.server_name", "http.scheme", "net.host.name", "http.host", "net.host.port",
             "http.target", "net.peer.ip", "http.user_agent", "http.flavor", "http.status_code")
# the SDK's record_exception writes exception.escaped (obsoleted) as the
# string "False"/"True" while the registry says boolean
EXCEPTION_EVENT = {"deprecated:exception.escaped", "type_mismatch:exception.escaped"}


def test_flask_spans_and_exception_event(upstream_main, semconv_mode):
    semconv_mode(None)
    spans = flask_spans()
    assert spans["/boom"].events[0].name == "exception"
    out, p, tel = run(records_from_spans(list(spans.values())), upstream_main, ALL_ANNOTATE)
    got = {s.attributes["http.route"]: s for s in decoded(out)}
    assert tags(got["/hello/<name>"]) == deprecated(*FLASK_OLD)      # http.route is stable: no finding
    # the exception event matches the stable event definition (type, message
    # and stacktrace present, so no requirement finding) but its
    # exception.escaped is deprecated and has the wrong type
    assert tags(got["/boom"]) == deprecated(*FLASK_OLD) | EXCEPTION_EVENT
    assert findings(tel, id="type_mismatch", attribute_or_metric="exception.escaped") == 1
    assert p.stats()["total_entities_by_type"]["span_event"] == 1
    assert p.stats()["seen_registry_events"] == {"exception": 1}

    semconv_mode("http")
    spans = flask_spans()
    out, _p, tel = run(records_from_spans(list(spans.values())), upstream_main, ALL_ANNOTATE)
    got = {s.attributes["http.route"]: s for s in decoded(out)}
    assert tags(got["/hello/<name>"]) == set()
    assert tags(got["/boom"]) == {"undefined_enum_variant:error.type"} | EXCEPTION_EVENT


# ------------------------------------------------------- hand-made registry

REGISTRY = """
groups:
  - id: registry.app
    type: attribute_group
    brief: App attributes.
    attributes:
      - id: app.mode
        type:
          members:
            - {id: fast, value: fast, stability: stable}
            - {id: slow, value: slow, stability: stable}
        stability: stable
        brief: Mode.
      - id: app.user
        type: string
        stability: stable
        brief: User.
        examples: [bob]
      - id: app.old
        type: string
        stability: stable
        brief: Old name of app.user.
        deprecated: {reason: renamed, renamed_to: app.user}
        examples: [bob]
      - id: app.beta
        type: int
        stability: development
        brief: Not stable yet.
        examples: [1]
  - id: span.app.work
    type: span
    span_kind: internal
    stability: stable
    brief: Work.
    attributes:
      - ref: app.mode
        requirement_level: required
      - ref: app.user
        requirement_level: recommended
  - id: event.app.step
    type: event
    name: app.step
    stability: stable
    brief: A step.
    attributes:
      - ref: app.mode
        requirement_level: required
  - id: metric.app.requests
    type: metric
    metric_name: app.requests
    instrument: counter
    unit: "{request}"
    stability: stable
    brief: Requests.
    attributes:
      - ref: app.mode
        requirement_level: required
"""


@pytest.fixture
def registry(tmp_path) -> str:
    d = tmp_path / "registry"
    d.mkdir()
    (d / "app.yaml").write_text(REGISTRY)
    return str(d)


def spans_of(*specs, service="svc"):
    """specs: (name, kind, attributes[, events]) -> finished SDK spans."""
    mem = InMemorySpanExporter()
    # the plain constructor: one resource per service (Resource.create adds a random service.instance.id)
    tp = TracerProvider(resource=Resource({"service.name": service}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tr = tp.get_tracer("test")
    for spec in specs:
        name, kind, attrs = spec[:3]
        with tr.start_as_current_span(name, kind=kind, attributes=attrs) as span:
            for ev_name, ev_attrs in (spec[3] if len(spec) > 3 else ()):
                span.add_event(ev_name, ev_attrs)
    return list(mem.get_finished_spans())


GOOD = ("app.work", SpanKind.INTERNAL, {"app.mode": "fast", "app.user": "bob"})
ODD_MODE = ("app.work", SpanKind.INTERNAL, {"app.mode": "turbo"})          # info + improvement
OLD = ("app.work", SpanKind.INTERNAL, {"app.mode": "slow", "app.user": "u", "app.old": "x"})  # violation
WRONG_KIND = ("app.work", SpanKind.SERVER, {"app.mode": "fast", "app.user": "bob"})       # violation
BETA = ("misc", SpanKind.INTERNAL, {"app.beta": 1})                        # information
CUSTOM = ("misc", SpanKind.INTERNAL, {"custom": 1})                        # violation + improvement
EVENTS = ("misc", SpanKind.INTERNAL, {}, [("app.step", {}), ("nope", {})])  # violations


def test_findings_on_a_hand_made_registry(registry):
    spans = spans_of(GOOD, ODD_MODE, OLD, WRONG_KIND, BETA, CUSTOM, EVENTS)
    out, _p, tel = run(records_from_spans(spans), registry, ALL_ANNOTATE)
    got = [tags(s) for s in decoded(out)]
    assert got == [
        set(),
        {"undefined_enum_variant:app.mode", "recommended_attribute_not_present:app.user"},
        {"deprecated:app.old"},
        {"unexpected_span_kind:app.work"},
        {"not_stable:app.beta"},
        {"missing_attribute:custom", "missing_namespace:custom"},
        {"required_attribute_not_present:app.mode", "missing_event:nope"},
    ]
    levels = [s.attributes.get(LEVEL_ATTRIBUTE) for s in decoded(out)]
    assert levels == [None, "improvement", "violation", "violation", "information", "violation", "violation"]
    assert findings(tel, id="missing_attribute", level="violation", signal="span",
                    attribute_or_metric="custom") == 1


def test_pass_keeps_the_records_untouched_and_counts(registry):
    rs = records_from_spans(spans_of(GOOD, OLD, CUSTOM, CUSTOM))
    out, p, tel = run(rs, registry)
    assert out.buf is rs.buf and len(out) == 4
    assert findings(tel, id="missing_attribute", attribute_or_metric="custom") == 2
    assert findings(tel, id="deprecated", attribute_or_metric="app.old") == 1
    items = tel.get("semconv_items")
    assert items.value(component="semconv", otel_signal="traces", action="pass") == 4
    # + the resource's service.name, unknown to this registry
    assert p.stats()["advice_type_counts"] == {"deprecated": 1, "missing_attribute": 2 + 1, "missing_namespace": 2}


def test_annotate_only_the_configured_levels_and_keep_other_bytes(registry):
    spans = spans_of(GOOD, ODD_MODE, OLD, BETA)
    rs = records_from_spans(spans)
    out, _p, _tel = run(rs, registry, {"violation": "annotate"})
    items = decoded(out)
    assert [tags(s) for s in items] == [set(), set(), {"deprecated:app.old"}, set()]
    # unannotated records are byte for byte what came in; annotated ones
    # keep everything else (ids, times, attributes)
    before = [bytes(p) for p in rs.payloads()]
    after = [bytes(p) for p in out.payloads()]
    assert [a == b for a, b in zip(after, before)] == [True, True, False, True]
    src = codec.decode_span(before[2])
    assert items[2].span_id == src.span_id and items[2].start_time_unix_nano == src.start_time_unix_nano
    assert {k: v for k, v in items[2].attributes.items() if not k.startswith("otelplug.")} == src.attributes


def test_drop_is_a_mask_and_settles_the_ack_once(registry):
    ack, settled = counting_ack()
    tel = Telemetry()
    rs = records_from_spans(spans_of(GOOD, OLD, CUSTOM, BETA, GOOD), (ack,))
    out, _p, _ = run(rs, registry, {"violation": "drop"}, telemetry=tel)
    assert out.buf is rs.buf                                # selected, not copied
    assert [codec.decode_span(p).name for p in out.payloads()] == ["app.work", "misc", "app.work"]
    assert settled == [False]
    assert tel.get("processor_dropped_items").value(processor="semconv", otel_signal="traces") == 2
    assert tel.get("semconv_items").value(component="semconv", otel_signal="traces", action="drop") == 2
    # everything dropped: nothing goes on, the ack is still settled once
    ack, settled = counting_ack()
    out, _p, _ = run(records_from_spans(spans_of(OLD, CUSTOM), (ack,)), registry, {"violation": "drop"})
    assert out is None and settled == [False]


def test_drop_and_annotate_together(registry):
    rs = records_from_spans(spans_of(GOOD, ODD_MODE, OLD))
    out, _p, _ = run(rs, registry, {"violation": "drop", "improvement": "annotate"})
    items = decoded(out)
    assert [s.attributes["app.mode"] for s in items] == ["fast", "turbo"]
    # an item is annotated with the findings at annotated levels only
    assert [tags(s) for s in items] == [set(), {"recommended_attribute_not_present:app.user"}]


def test_shape_cache_is_exact_for_enum_values_and_types(registry):
    """Same keys, same name: the enum value and the value type still
    decide the findings (level-2 cache), in one batch."""
    specs = []
    for i in range(60):
        mode = ("fast", "slow", "turbo", "warp")[i % 4]
        user = i if i % 5 == 0 else f"u{i}"           # int where a string belongs
        specs.append(("app.work", SpanKind.INTERNAL, {"app.mode": mode, "app.user": user}))
    spans = spans_of(*specs)
    for cfg in ({}, {"max_shapes": 1, "max_variants": 1}):   # cache bounds: still exact
        out, _p, tel = run(records_from_spans(spans), registry, ALL_ANNOTATE, **cfg)
        for s, src in zip(decoded(out), spans):
            want = set()
            if src.attributes["app.mode"] in ("turbo", "warp"):
                want.add("undefined_enum_variant:app.mode")
            if isinstance(src.attributes["app.user"], int):
                want.add("type_mismatch:app.user")
            assert tags(s) == want
        assert findings(tel, id="undefined_enum_variant") == 30
        assert findings(tel, id="type_mismatch") == 12
        if cfg:
            assert tel.get("semconv_uncached_checks").value(component="semconv") > 0


def test_statistics_are_per_item_although_checks_are_cached(registry):
    spans = spans_of(*([GOOD] * 50 + [ODD_MODE] * 7))
    _out, p, tel = run(records_from_spans(spans), registry)
    st = p.stats()
    # attributes: the spans' plus the resource's service.name
    assert st["total_entities_by_type"] == {"attribute": 50 * 2 + 7 + 1, "resource": 1, "span": 57}
    assert st["seen_registry_attributes"] == {"app.mode": 57, "app.user": 50}
    assert st["seen_registry_spans"] == {"app.work": 57}
    assert st["advice_level_counts"] == {"improvement": 7, "information": 7, "violation": 1}
    assert st["coverage_by_signal"]["spans"] == {"seen": 1, "total": 1, "coverage": 1.0}
    assert st["coverage_by_signal"]["attributes"]["seen"] == 2
    # gauges refreshed from the same statistics at scrape time
    text = tel.exposition()
    assert 'otelplug_semconv_registry_coverage{component="semconv",kind="spans"} 1.0' in text
    assert 'otelplug_semconv_namespace_coverage{component="semconv",namespace="app"} 0.5' in text
    assert 'otelplug_semconv_entities{component="semconv",type="span"} 57.0' in text


def test_resources_are_checked_once_per_distinct_resource(registry):
    tel = Telemetry()
    cap = Capture()
    p = make(semconv.factory, {"registry": registry}, cap, telemetry=tel)
    for _ in range(3):
        p.consume(records_from_spans(spans_of(GOOD, GOOD, service="a")))
    p.consume(records_from_spans(spans_of(GOOD, service="b")))
    assert p.stats()["total_entities_by_type"]["resource"] == 2
    # service.name is not in this registry
    assert findings(tel, id="missing_attribute", signal="resource", attribute_or_metric="service.name") == 2


def test_attribute_label_values_are_bounded(registry):
    spans = spans_of(*[("misc", SpanKind.INTERNAL, {f"x{i}.k": 1}) for i in range(5)],
                     ("misc", SpanKind.INTERNAL, {"app.old": "x"}))
    _out, _p, tel = run(records_from_spans(spans), registry, label_limit=2)
    subjects = {k[4] for k, _v in tel.get("semconv_findings").samples()}
    assert subjects == {"x0.k", "x1.k", "other", "app.old"}     # registry names always kept
    # x2.k .. x4.k and the resource's service.name
    assert findings(tel, id="missing_attribute", attribute_or_metric="other") == 3 + 1


def log_records(*specs):
    """specs: (event_name, attributes) -> a logs RecordSet."""
    rp = encode_resource(model.Resource({"service.name": "svc"}))
    rk = codec.definition_key(rp)
    parts = [encode_log(model.LogData(time_unix_nano=1, observed_time_unix_nano=1, severity_number=9,
                                      event_name=ev, body="b", attributes=attrs, resource_key=rk))
             for ev, attrs in specs]
    return RecordSet.from_parts("logs", parts, {rk: rp})


def test_logs_and_events(registry):
    rs = log_records(("app.step", {"app.mode": "fast"}), ("app.step", {}), (None, {"app.old": "x"}),
                     ("nope", {"app.mode": "warp"}))
    out, _p, tel = run(rs, registry, {"violation": "annotate", "information": "drop"})
    got = decoded(out)
    # the last one has an information finding (warp) -> dropped
    assert [tags(r) for r in got] == [set(), {"required_attribute_not_present:app.mode"}, {"deprecated:app.old"}]
    assert findings(tel, id="missing_event", signal="log", attribute_or_metric="nope") == 1


def metric_records():
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "svc"}))
    meter = mp.get_meter("m")
    c = meter.create_counter("app.requests", unit="{request}")
    for mode in ("fast", "slow", "turbo"):
        c.add(1, {"app.mode": mode})
    meter.create_histogram("app.latency", unit="ms").record(3.0, {"app.mode": "fast"})
    meter.create_up_down_counter("app.requests2", unit="{request}").add(1)
    rm = reader.get_metrics_data().resource_metrics[0]
    rp = codec.encode_resource(rm.resource)
    rk = codec.definition_key(rp)
    parts, points = [], 0
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            parts.append(codec.encode_metric(m, rk, 0))
            points += len(m.data.data_points)
    return RecordSet.from_parts("metrics", parts, {rk: rp}, items=points)


def test_metrics_and_their_points(registry):
    rs = metric_records()
    assert rs.items == 5
    out, p, tel = run(rs, registry, {"violation": "drop"})
    # app.latency and app.requests2 are not in the registry -> dropped with their points
    assert [codec.decode_metric(x).name for x in out.payloads()] == ["app.requests"]
    assert out.items == 3
    assert findings(tel, id="missing_metric", signal="metric", attribute_or_metric="app.latency") == 1
    assert findings(tel, id="undefined_enum_variant", signal="metric", attribute_or_metric="app.mode") == 1
    st = p.stats()
    assert st["total_entities_by_type"]["metric"] == 3
    assert st["total_entities_by_type"]["data_point"] == 5
    assert st["seen_registry_metrics"] == {"app.requests": 1}


def test_processor_rejects_route_and_counts_are_consistent_with_processor_helper(registry):
    with pytest.raises(ConfigErrors) as ei:
        decode(semconv.SemconvConfig, {"registry": registry, "actions": {"violation": "route"}},
               ("processors", "semconv"))
    (err,) = ei.value.errors
    assert str(err).startswith("processors::semconv::actions::violation: route sends items to other "
                               "pipelines, which a processor cannot do: use the semconv_router connector")


# --------------------------------------------------------------- config errors

def config_errors(text):
    with pytest.raises(ConfigErrors) as ei:
        load("c.yaml", Registry.default(), text=text)
    return [str(e) for e in ei.value.errors]


PIPE = """
exporters: {debug: {}}
receivers: {shm: {channels: [cfgtest]}}
service:
  pipelines:
    traces: {receivers: [shm], processors: [semconv], exporters: [debug]}
"""


def test_config_errors_name_the_registry_path(tmp_path):
    errs = config_errors("processors: {semconv: {}}" + PIPE)
    assert errs == ["processors::semconv::registry: required: the path of a semantic-convention registry "
                    "(a folder, or its manifest) (c.yaml:1)"]
    missing = tmp_path / "nowhere"
    errs = config_errors(f"processors: {{semconv: {{registry: {missing}}}}}" + PIPE)
    assert errs == [f"processors::semconv::registry: {missing}: error: RegistryNotFound: registry path "
                    f"does not exist: {missing} (c.yaml:1)"]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.yaml").write_text("groups:\n  - id: g\n    type: span\n    span_kind: client\n    brief: b\n"
                                "    attributes:\n      - ref: not.there\n")
    errs = config_errors(f"processors:\n  semconv:\n    registry: {bad}\n" + PIPE)
    # the registry's own diagnostic (file:line, Weaver's error name) under the config path
    assert len(errs) == 1
    assert errs[0].startswith(f"processors::semconv::registry: {bad}/a.yaml:7: error: UnresolvedAttributeRef: ")
    assert errs[0].endswith("(c.yaml:3)")
    errs = config_errors(f"processors:\n  semconv:\n    registry: {bad}\n    actions: {{violation: explode}}\n"
                         + PIPE)
    assert errs == ["processors::semconv::actions::violation: must be one of 'pass', 'annotate', 'drop', "
                    "'route', got 'explode' (c.yaml:4)"]


# ------------------------------------------------------------- the connector

_CAPTURED: dict[str, list] = {}


def capture_factory():
    from dataclasses import dataclass

    @dataclass
    class CaptureConfig:
        pass

    class CaptureExporter(Consumer):
        def __init__(self, settings, config):
            self.key = f"{settings.id}/{settings.signal}"
            _CAPTURED.setdefault(self.key, [])

        def consume(self, records):
            _CAPTURED[self.key].append(records.detach())
            records.settle()

        def start(self, host):
            pass

        def shutdown(self):
            pass

    return Factory("capture", Kind.EXPORTER, CaptureConfig, CaptureExporter)


def service(text) -> Service:
    reg = Registry.default()
    reg.add(capture_factory())
    _CAPTURED.clear()
    return Service(load("c.yaml", reg, text=text))


ROUTER = """
receivers: {{shm: {{channels: [routertest]}}}}
exporters: {{capture/ok: {{}}, capture/bad: {{}}, capture/findings: {{}}}}
connectors:
  semconv_router:
    registry: {registry}
    actions: {{violation: route, improvement: annotate}}
    route_pipelines: [traces/quarantine]
    emit_findings_as_logs: true
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], exporters: [semconv_router]}}
    traces/ok: {{receivers: [semconv_router], exporters: [capture/ok]}}
    traces/quarantine: {{receivers: [semconv_router], exporters: [capture/bad]}}
    logs/findings: {{receivers: [semconv_router], exporters: [capture/findings]}}
"""


def test_router_routes_annotates_and_emits_weaver_finding_logs(registry):
    svc = service(ROUTER.format(registry=registry))
    spans = spans_of(GOOD, ODD_MODE, OLD, CUSTOM)
    ack, settled = counting_ack()
    svc.entries[PipelineID.parse("traces")].consume(records_from_spans(spans, (ack,)))
    assert settled == [False]                                   # both branches settled their share
    ok = [s for rs in _CAPTURED["capture/ok/traces"] for s in decoded(rs)]
    bad = [s for rs in _CAPTURED["capture/bad/traces"] for s in decoded(rs)]
    assert [s.attributes["app.mode"] for s in ok] == ["fast", "turbo"]
    assert [tags(s) for s in ok] == [set(), {"recommended_attribute_not_present:app.user"}]
    assert [s.attributes.get("app.old") for s in bad] == ["x", None]
    # routed items say why they were routed
    assert [tags(s) for s in bad] == [{"deprecated:app.old"},
                                      {"missing_attribute:custom", "missing_namespace:custom"}]
    # violations as Weaver live-check finding events, tied to their span
    logs = [r for rs in _CAPTURED["capture/findings/logs"] for r in decoded(rs)]
    got = sorted((r.attributes["weaver.finding.id"], r.attributes.get("weaver.finding.context.attribute_key"))
                 for r in logs)
    assert got == [("deprecated", "app.old"), ("missing_attribute", "custom"),
                   ("missing_attribute", "service.name")]        # from the resource, once
    span_log = next(r for r in logs if r.attributes["weaver.finding.id"] == "deprecated")
    assert span_log.event_name == "weaver.live_check.finding"
    assert span_log.severity_number == 17 and span_log.severity_text == "ERROR"
    assert span_log.body == "Attribute 'app.old' is deprecated; renamed to 'app.user'."
    assert span_log.attributes["weaver.finding.level"] == "violation"
    assert span_log.attributes["weaver.finding.sample_type"] == "attribute"
    assert span_log.attributes["weaver.finding.signal_type"] == "span"
    assert span_log.attributes["weaver.finding.signal_name"] == "app.work"
    assert span_log.attributes["weaver.finding.resource_attribute.service.name"] == "svc"
    assert span_log.span_id == spans[2].context.span_id and span_log.trace_id == spans[2].context.trace_id
    router = svc.connectors[("semconv_router", "traces")]
    assert router.stats()["total_entities_by_type"]["span"] == 4


def test_router_config_errors_have_paths(registry):
    errs = config_errors(f"""
receivers: {{shm: {{channels: [x]}}}}
exporters: {{debug: {{}}}}
connectors:
  semconv_router:
    registry: {registry}
    actions: {{violation: route}}
    findings_pipelines: [traces/x]
service:
  pipelines:
    traces: {{receivers: [shm], exporters: [semconv_router]}}
    traces/ok: {{receivers: [semconv_router], exporters: [debug]}}
""")
    assert errs == [
        "connectors::semconv_router::route_pipelines: required when an action is route (c.yaml:5)",
        "connectors::semconv_router::findings_pipelines::0: pipeline 'traces/x' is not a logs pipeline (c.yaml:8)",
        "connectors::semconv_router::findings_pipelines: set emit_findings_as_logs: true to use it (c.yaml:8)",
    ]
    with pytest.raises(ConfigErrors) as ei:
        service(ROUTER.format(registry=registry).replace("route_pipelines: [traces/quarantine]",
                                                         "route_pipelines: [traces/elsewhere]"))
    # checked in config validation, so they also say where in the file they are
    assert [str(e) for e in ei.value.errors] == [
        'connectors::semconv_router::route_pipelines::0: pipeline "traces/elsewhere" does not receive '
        'from "semconv_router" (c.yaml:8)',
        "connectors::semconv_router::route_pipelines: no traces pipeline listed for the items an action "
        "routes (c.yaml:8)",
    ]


# ------------------------------------------------------------------ end to end

E2E = """
receivers:
  shm: {{channels: [{channel}]}}
processors:
  batch: {{timeout: 20ms}}
  semconv:
    registry: {registry}
    actions: {{violation: drop, information: annotate}}
exporters:
  file: {{path: {out}}}
service:
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [batch, semconv], exporters: [file]}}
"""


def test_end_to_end_rings_to_file_through_semconv(upstream_main, semconv_mode, tmp_path):
    """Flask instrumentation -> ShmSpanProcessor -> ring -> sidecar (shm
    receiver, batch, semconv) -> file exporter (OTLP-JSON)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from otelplug import ShmSpanProcessor
    from otelplug.otlp import jsonfmt
    from otelplug.otlp.values import from_kv

    semconv_mode("http")
    channel = "semconve2e"
    out = tmp_path / "out.jsonl"
    svc = Service(load("e2e.yaml", Registry.default(),
                       text=E2E.format(channel=channel, registry=upstream_main, out=out)))
    svc.start()
    try:
        tp = TracerProvider(resource=Resource.create({"service.name": "shop"}))
        tp.add_span_processor(ShmSpanProcessor(channel, stamp_pid=False))
        client = flask_app(tp).test_client()
        for _ in range(3):
            client.get("/hello/ann")     # clean: passes untouched
        client.get("/boom")              # exception.escaped (violation) -> dropped
        with tp.get_tracer("app").start_as_current_span("work", attributes={"error.type": "oops"}):
            pass                          # undocumented enum value (information) -> annotated
        tp.force_flush()

        def exported():
            lines = out.read_text().splitlines() if out.exists() else []
            return [s for line in lines for rs in jsonfmt.parse(line, ExportTraceServiceRequest).resource_spans
                    for ss in rs.scope_spans for s in ss.spans]

        def incoming():
            return svc.telemetry.get("processor_incoming_items").value(processor="semconv",
                                                                       otel_signal="traces")
        # the state the assertions below are about: all 5 spans through the
        # processor, and the 4 it let through written out
        wait_for(lambda: incoming() >= 5 and len(exported()) >= 4,
                 what="5 spans into the semconv processor and 4 exported")
        spans = exported()
        processed = incoming()
    finally:
        svc.shutdown()
    assert processed == 5
    attrs = {s.name: from_kv(s.attributes) for s in spans}
    assert sorted(s.name for s in spans) == ["GET /hello/<name>"] * 3 + ["work"]
    assert FINDINGS_ATTRIBUTE not in attrs["GET /hello/<name>"]
    assert list(attrs["work"][FINDINGS_ATTRIBUTE]) == ["undefined_enum_variant:error.type"]
    assert attrs["work"][LEVEL_ATTRIBUTE] == "information"
    tel = svc.telemetry
    assert tel.get("processor_dropped_items").value(processor="semconv", otel_signal="traces") == 1
    assert findings(tel, id="type_mismatch", attribute_or_metric="exception.escaped") == 1
    proc = next(p for p in svc.processors if isinstance(p, semconv.SemconvProcessor))
    assert json.loads(json.dumps(proc.stats()))["total_entities_by_type"]["span"] == 5
