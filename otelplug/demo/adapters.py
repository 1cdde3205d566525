"""The demo's adapter processes: what a web worker, a job worker and a GPU
worker send, through the real OpenTelemetry SDK and otelplug's processors.

Each adapter runs for a fixed time and reports what it produced, so the
demo can check that every item is accounted for at the sidecar.

Events (``adapter.started``/``adapter.stopped`` of the adapter contract, the
job worker's ``otelplug.demo.item``) go through the typed emitter generated
from the project's registry (``contract_events.py``, kept up to date by
tests/events/test_demo_events.py), straight into the adapter's ring.
"""
from __future__ import annotations

import json
import random
import time

import psutil

from . import contract_events as ev

KINDS = ("web", "job", "gpu")
#: the contract's component identity of each demo adapter
COMPONENTS = {"web": ev.AdapterComponent.ORCHESTRATOR, "job": ev.AdapterComponent.CONSENSUS_ENGINE,
              "gpu": ev.AdapterComponent.GPU_KERNEL}


def _resource_attributes(kind: str, index: int) -> dict:
    return {"service.name": f"demo-{kind}", "service.instance.id": f"{kind}-{index}",
            "deployment.environment.name": "demo"}


def _events(kind: str, index: int, channel: str) -> ev.Events:
    return ev.Events(adapter_component=COMPONENTS[kind],
                     adapter_gpu_kernel_name="inference.batch" if kind == "gpu" else None,
                     channel=channel, resource_attributes=_resource_attributes(kind, index))


def _usage(process: psutil.Process) -> dict:
    return {"usage_cpu_pct": process.cpu_percent(), "usage_memory_mb": process.memory_info().rss >> 20}


def _sdk(kind: str, index: int, channel: str):
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from otelplug import ShmLogRecordProcessor, ShmMetricExporter, ShmSpanProcessor
    resource = Resource.create(_resource_attributes(kind, index))
    tp = TracerProvider(resource=resource)
    spans = ShmSpanProcessor(channel)
    tp.add_span_processor(spans)
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(ShmLogRecordProcessor(channel))
    reader = PeriodicExportingMetricReader(ShmMetricExporter(channel), export_interval_millis=500)
    mp = MeterProvider(resource=resource, metric_readers=[reader])
    return tp, lp, mp, spans


def run_adapter(kind: str, index: int, channel: str, seconds: float, rate: float, out) -> None:
    """Produce for ``seconds`` at about ``rate`` units of work per second,
    then flush and put a tally on ``out``."""
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tp, lp, mp, spans = _sdk(kind, index, channel)
    tracer = tp.get_tracer(f"otelplug.demo.{kind}", "0.1.0")
    logger = lp.get_logger(f"otelplug.demo.{kind}", "0.1.0")
    meter = mp.get_meter(f"otelplug.demo.{kind}", "0.1.0")
    rng = random.Random(index * 7919 + hash(kind) % 1000)
    tally = {"kind": kind, "index": index, "spans": 0, "logs": 0, "errors": 0, "slow": 0}
    events = _events(kind, index, channel)
    process = psutil.Process()
    process.cpu_percent()  # starts psutil's CPU measurement interval
    events.adapter_started(config=json.dumps({"kind": kind, "seconds": seconds, "rate": rate}, sort_keys=True),
                           usage_memory_mb=process.memory_info().rss >> 20)
    tally["logs"] += 1
    started = time.monotonic()
    items = 0
    requests = meter.create_counter("demo.requests", unit="{request}", description="Work items handled")
    duration = meter.create_histogram("demo.duration", unit="s", description="Work item duration")
    inflight = meter.create_up_down_counter("demo.inflight", unit="{item}")
    util = []
    meter.create_observable_gauge("demo.gpu.utilization", [lambda o: [
        __import__("opentelemetry.metrics", fromlist=["Observation"]).Observation(
            util[-1] if util else 0.0, {"hw.id": str(index)})]], unit="1")
    end = time.monotonic() + seconds
    period = 1.0 / rate if rate > 0 else 0.0
    next_at = time.monotonic()
    while time.monotonic() < end:
        error = rng.random() < 0.02
        slow = rng.random() < 0.01
        t0 = time.time_ns()
        inflight.add(1)
        if kind == "web":
            route = rng.choice(["/api/orders", "/api/users/{id}", "/health", "/api/cart"])
            with tracer.start_as_current_span(f"GET {route}", kind=SpanKind.SERVER, attributes={
                    "http.request.method": "GET", "http.route": route, "url.scheme": "http",
                    "server.address": "demo.local", "server.port": 8080}) as root:
                with tracer.start_as_current_span("auth.check"):
                    pass
                with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT, attributes={
                        "db.system.name": "postgresql", "db.operation.name": "SELECT",
                        "db.collection.name": "orders"}):
                    if slow:
                        time.sleep(0.02)
                status = 500 if error else 200
                root.set_attribute("http.response.status_code", status)
                if error:
                    root.set_status(Status(StatusCode.ERROR, "upstream timeout"))
                    root.add_event("exception", {"exception.type": "TimeoutError",
                                                 "exception.message": "upstream timeout"})
            tally["spans"] += 3
        elif kind == "job":
            with tracer.start_as_current_span("process invoice", kind=SpanKind.CONSUMER, attributes={
                    "messaging.system": "rabbitmq", "messaging.operation.type": "process",
                    "messaging.destination.name": "invoices"}) as s:
                for step in ("validate", "render", "store"):
                    with tracer.start_as_current_span(step):
                        pass
                if error:
                    s.set_status(Status(StatusCode.ERROR, "render failed"))
            tally["spans"] += 4
        else:
            with tracer.start_as_current_span("inference.batch", attributes={
                    "otelplug.demo.batch_size": rng.choice([8, 16, 32]), "otelplug.demo.gpu.id": index}):
                util.append(rng.uniform(0.3, 0.99))
                if slow:
                    time.sleep(0.02)
            tally["spans"] += 1
        if kind == "job":
            events.otelplug_demo_item(demo_kind=ev.OtelplugDemoKind.JOB, demo_error=error,
                                      level=ev.Level.ERROR if error else ev.Level.INFO)
        else:
            severity = SeverityNumber.ERROR if error else SeverityNumber.INFO
            logger.emit(body=f"{kind} item done" if not error else f"{kind} item failed",
                        severity_number=severity, severity_text=severity.name,
                        attributes={"otelplug.demo.kind": kind, "otelplug.demo.error": error})
        tally["logs"] += 1
        items += 1
        tally["errors"] += error
        tally["slow"] += slow
        requests.add(1, {"otelplug.demo.kind": kind, "otelplug.demo.outcome": "error" if error else "ok"})
        duration.record((time.time_ns() - t0) / 1e9, {"otelplug.demo.kind": kind})
        inflight.add(-1)
        if period:
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    events.adapter_stopped(reason="finished", usage_throughput_per_sec=items / max(time.monotonic() - started, 1e-9),
                           **_usage(process))
    tally["logs"] += 1
    tally["event_drops"] = events.stats()["dropped"]
    events.close()
    mp.shutdown()      # final metric export
    tp.shutdown()
    lp.shutdown()
    tally["span_drops"] = spans.dropped
    out.put(tally)
