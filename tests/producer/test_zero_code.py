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
    # cwd: opentelemetry-instrument puts the working folder first on
    # PYTHONPATH, and a source checkout's otelplug.egg-info there would be the
    # first distro found whatever else is installed
    r = subprocess.run(_instrument_cmd() + [sys.executable, str(app)], env=full_env,
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
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


# -- what installing otelplug changes: nothing until asked --------------------------
PROBE = textwrap.dedent('''
    import os
    from opentelemetry import trace
    with trace.get_tracer("probe").start_as_current_span("probe-span"):
        pass
    tp = trace.get_tracer_provider()
    procs = getattr(getattr(tp, "_active_span_processor", None), "_span_processors", ())
    print("PROCESSORS", ",".join(type(p).__name__ for p in procs) or "-")
    print("TRACES_EXPORTER", os.environ.get("OTEL_TRACES_EXPORTER", "-"))
    os._exit(0)   # no exporter shutdown: the SDK's default OTLP exporter has no server here
''')

#: a second distro, installed for real (a dist-info folder on the path)
OTHER_DISTRO = textwrap.dedent('''
    import os
    from opentelemetry.instrumentation.distro import BaseDistro

    class OtherDistro(BaseDistro):
        def _configure(self, **kwargs):
            os.environ.setdefault("OTEL_TRACES_EXPORTER", "console")
''')


def _install_other_distro(folder: Path) -> Path:
    folder.mkdir()
    (folder / "other_distro.py").write_text(OTHER_DISTRO)
    info = folder / "other_distro-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-distro\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[opentelemetry_distro]\nother = other_distro:OtherDistro\n")
    return folder


def _probe(tmp_path, env: dict, first_on_path: Path | None = None) -> dict:
    app = tmp_path / "probe.py"
    app.write_text(PROBE)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env.update(env)
    if first_on_path is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(first_on_path),
                                                               full_env.get("PYTHONPATH")]))
    # cwd: opentelemetry-instrument puts the working folder first on
    # PYTHONPATH, and a source checkout's otelplug.egg-info there would be the
    # first distro found whatever else is installed
    r = subprocess.run(_instrument_cmd() + [sys.executable, str(app)], env=full_env,
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)


def _rings(shm_dir: Path) -> list[str]:
    return sorted(p.name for p in shm_dir.glob("*.ring"))


def test_installed_but_not_asked_for_changes_nothing(tmp_path, shm_dir):
    """No OTEL_* variable: otelplug's distro is the only one installed, so
    opentelemetry-instrument picks it, and it leaves the SDK's defaults (no
    exporter variable: a tracer provider without exporters); no ring."""
    out = _probe(tmp_path, {})
    assert out == {"PROCESSORS": "-", "TRACES_EXPORTER": "-"}
    assert _rings(shm_dir) == []


def test_the_distro_selected_by_name_makes_otelplug_the_default(tmp_path, shm_dir):
    out = _probe(tmp_path, {"OTEL_PYTHON_DISTRO": "otelplug"})
    assert out == {"PROCESSORS": "ShmSpanProcessor", "TRACES_EXPORTER": "otelplug"}
    assert [s.name for _, s in drain().spans] == ["probe-span"]


@pytest.mark.parametrize("selected", [None, "other", "otelplug"])
def test_with_another_distro_installed_the_choice_is_predictable(tmp_path, shm_dir, selected):
    """Whichever distro opentelemetry-instrument finds first, otelplug's acts
    only when selected by name."""
    other = _install_other_distro(tmp_path / "site")
    out = _probe(tmp_path, {"OTEL_PYTHON_DISTRO": selected} if selected else {}, first_on_path=other)
    if selected == "otelplug":
        assert out == {"PROCESSORS": "ShmSpanProcessor", "TRACES_EXPORTER": "otelplug"}
        assert [s.name for _, s in drain().spans] == ["probe-span"]
    else:      # the other distro (first on the path, or named) configured the SDK
        assert out == {"PROCESSORS": "BatchSpanProcessor", "TRACES_EXPORTER": "console"}
        assert _rings(shm_dir) == []


def test_an_exporter_variable_asks_for_the_ring_under_any_distro(tmp_path, shm_dir):
    other = _install_other_distro(tmp_path / "site")
    out = _probe(tmp_path, {"OTEL_TRACES_EXPORTER": "otelplug"}, first_on_path=other)
    assert out["TRACES_EXPORTER"] == "otelplug"
    assert [s.name for _, s in drain().spans] == ["probe-span"]
