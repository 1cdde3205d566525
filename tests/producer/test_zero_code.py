"""Zero code: ``opentelemetry-instrument`` with the otelplug entry points, in
a real subprocess; everything the app emits reaches the consumer, and the
span processor installed is ShmSpanProcessor itself (no batching thread)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from producer_helpers import drain
from tests.requirements import missing

APP = textwrap.dedent('''
    import threading
    from opentelemetry import _logs, metrics, trace
    from opentelemetry._logs import SeverityNumber

    with trace.get_tracer("zc.app").start_as_current_span("zero-code-span") as span:
        span.set_attribute("answer", 42)
        _logs.get_logger("zc.app").emit(body="zero-code log", severity_number=SeverityNumber.INFO)
    metrics.get_meter("zc.app").create_counter("zc.counter").add(3)
    tp = trace.get_tracer_provider()
    names = [type(p).__name__ for p in tp._active_span_processor._span_processors]
    print("PROCESSORS", ",".join(names))
    print("THREADS", ",".join(sorted(t.name for t in threading.enumerate())))
''')


def _instrument_cmd():
    exe = shutil.which("opentelemetry-instrument") or str(
        Path(sys.executable).parent / "opentelemetry-instrument")
    if not os.path.exists(exe):
        missing("opentelemetry-instrument", "pip install -e '.[test]'")
    return [exe]


@pytest.mark.parametrize("env", [
    {"OTEL_TRACES_EXPORTER": "otelplug", "OTEL_LOGS_EXPORTER": "otelplug",
     "OTEL_METRICS_EXPORTER": "otelplug"},
    {"OTEL_PYTHON_DISTRO": "otelplug", "OTEL_PYTHON_CONFIGURATOR": "otelplug"},
], ids=["exporter-env", "distro+configurator"])
def test_opentelemetry_instrument_writes_everything_to_the_ring(tmp_path, env):
    app = tmp_path / "app.py"
    app.write_text(APP)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env.update(env, OTEL_SERVICE_NAME="zero-code-svc",
                    OTELPLUG_SHM_DIR=os.environ["OTELPLUG_SHM_DIR"])
    r = subprocess.run(_instrument_cmd() + [sys.executable, str(app)], env=full_env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    assert out["PROCESSORS"] == "ShmSpanProcessor"
    assert "OtelBatchSpanRecordProcessor" not in out["THREADS"]
    got = drain()
    [(pid, span)] = got.spans
    assert span.name == "zero-code-span" and span.attributes == {"answer": 42}
    resource = got.resource_of(pid, span)
    assert resource.attributes["service.name"] == "zero-code-svc"
    assert resource.attributes["process.pid"] == pid
    [(_, log)] = got.logs
    assert log.body == "zero-code log" and log.span_id == span.span_id
    [(_, metric)] = got.metrics
    assert metric.name == "zc.counter" and metric.points[0].value == 3


def test_exporter_also_works_under_the_sdk_batch_processor():
    """What another configurator does with OTEL_TRACES_EXPORTER=otelplug."""
    from otelplug.producer import ShmSpanExporter
    tp = TracerProvider(shutdown_on_exit=False)
    tp.add_span_processor(BatchSpanProcessor(ShmSpanExporter()))
    with tp.get_tracer("t").start_as_current_span("batched"):
        pass
    assert tp.force_flush()
    got = drain()
    assert [s.name for _, s in got.spans] == ["batched"]
    tp.shutdown()
