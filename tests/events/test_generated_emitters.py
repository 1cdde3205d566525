"""Typed emitters generated from a registry: what they send (into a real ring
or through an SDK Logger), strict and counting modes, mypy --strict, and
reproducible output."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from otelplug.events import ContractViolation

from events_testdata import PROJECT_ROOT, generate
from tests.requirements import require_module
from producer_helpers import drain


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra)
    return env


def test_events_from_another_process_reach_the_ring_with_trace_context(generated_dir, tmp_path):
    script = textwrap.dedent("""
        import json, sys
        from opentelemetry.sdk.trace import TracerProvider
        import contract_events as ev
        events = ev.Events(adapter_component=ev.AdapterComponent.GPU_KERNEL, adapter_gpu_kernel_name="jp",
                           resource_attributes={"service.name": "adapter-test"})
        tracer = TracerProvider(shutdown_on_exit=False).get_tracer("t")
        with tracer.start_as_current_span("step") as span:
            events.consensus_proposed(vertex=7, proposed_color=3, confidence=0.25)
            ctx = span.get_span_context()
        events.processing_failed(error="replica exchange failed", recoverable=True)
        events.model_invalidated(id="m", invalidation_reason=ev.ModelInvalidationReason.PYTHON_RESTART)
        events.consensus_conflict(vertex=1, proposal_components=["thermodynamic", "neuromorphic"],
                                  proposal_colors=[2, 4], usage_gpu_pct=50)
        print(json.dumps({"trace_id": ctx.trace_id, "span_id": ctx.span_id, "stats": events.stats()}))
    """)
    done = subprocess.run([sys.executable, "-c", script], env=_env(PYTHONPATH=f"{generated_dir}:{PROJECT_ROOT}"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["stats"]["written"] == 4 and info["stats"]["violations"] == {}
    got = drain(timeout=10.0, until_no_producers=True)
    assert len(got.logs) == 4
    by_name = {rec.event_name: (pid, rec) for pid, rec in got.logs}
    pid, proposed = by_name["consensus.proposed"]
    assert proposed.attributes == {"consensus.vertex": 7, "consensus.proposed_color": 3, "consensus.confidence": 0.25}
    assert (proposed.trace_id, proposed.span_id) == (info["trace_id"], info["span_id"])
    assert (proposed.severity_number, proposed.severity_text) == (5, "DEBUG")  # the registry's level
    _pid, failed = by_name["processing.failed"]
    assert (failed.severity_number, failed.severity_text, failed.trace_id) == (17, "ERROR", 0)
    assert by_name["model.invalidated"][1].attributes["model.invalidation.reason"] == "python_restart"
    conflict = by_name["consensus.conflict"][1].attributes
    assert conflict["consensus.proposal.colors"] == (2, 4) or conflict["consensus.proposal.colors"] == [2, 4]
    assert conflict["usage.gpu_pct"] == 50.0 and isinstance(conflict["usage.gpu_pct"], float)
    resource = got.resource_of(pid, proposed)
    assert resource.attributes["adapter.component"] == "gpu_kernel"
    assert resource.attributes["adapter.gpu_kernel.name"] == "jp"
    assert resource.attributes["service.name"] == "adapter-test"
    assert got.scope_of(pid, proposed).name == "otelplug"


def test_strict_mode_raises_and_sends_nothing(events_module):
    ev = events_module
    events = ev.Events(adapter_component=ev.AdapterComponent.CONSENSUS_ENGINE, strict=True)
    try:
        with pytest.raises(ContractViolation) as info:
            events.consensus_proposed(vertex=1, proposed_color=2, confidence=1.7)
        assert info.value.finding_id == "value_out_of_range"
        assert str(info.value) == "consensus.proposed: confidence must be between 0 and 1, got 1.7"
        with pytest.raises(ContractViolation, match=r"processing.completed: colors_used must be greater than 0, got 0"):
            events.processing_completed(colors_used=0, duration_ms=1.0, iterations=1)
        with pytest.raises(ContractViolation, match=r"performance.checkpoint: phase must be non-empty"):
            events.performance_checkpoint(phase="", elapsed_ms=1.0, progress_pct=5.0)
        with pytest.raises(ContractViolation, match=r"consensus.conflict: proposal.components must be non-empty"):
            events.consensus_conflict(vertex=1, proposal_components=[], proposal_colors=[1])
        with pytest.raises(ContractViolation, match=r"consensus.reached: vertex must be an int, got str '3'"):
            events.consensus_reached(vertex="3", final_color=1, agreement_score=0.5)  # type: ignore[arg-type]
        with pytest.raises(ContractViolation, match=r"must be one of ModelInvalidationReason"):
            events.model_invalidated(id="m", invalidation_reason="restart")  # type: ignore[arg-type]
        assert events.stats()["written"] == 0 and events.stats()["violations"] == {}
        # the process's identity is checked too
        with pytest.raises(ContractViolation, match=r"adapter.gpu_kernel.name must be non-empty"):
            ev.Events(adapter_component=ev.AdapterComponent.GPU_KERNEL, adapter_gpu_kernel_name="", strict=True)
    finally:
        events.close()
    assert drain(timeout=0.5).logs == []


def test_default_mode_counts_and_still_sends(events_module, caplog):
    ev = events_module
    events = ev.Events(adapter_component=ev.AdapterComponent.THERMODYNAMIC)
    try:
        for confidence in (1.7, -1.0, 0.5):
            assert events.consensus_proposed(vertex=1, proposed_color=2, confidence=confidence) is True
        assert events.memory_pressure(used_mb=-5, available_mb=10) is True
        stats = events.stats()
        assert stats["written"] == 4
        assert stats["violations"] == {"consensus.proposed:value_out_of_range": 2,
                                       "memory.pressure:value_out_of_range": 1}
    finally:
        events.close()
    # after close: not sent, counted, never raised
    assert events.consensus_proposed(vertex=1, proposed_color=2, confidence=0.5) is False
    assert events.stats()["after_close"] == 1
    # logged once per event and finding id, not once per call
    warnings = [r.getMessage() for r in caplog.records if r.name == "otelplug.events"]
    assert len(warnings) == 2 and "confidence must be between 0 and 1, got 1.7" in warnings[0]
    sent = drain(timeout=5.0)
    assert sorted(rec.attributes.get("consensus.confidence", -99) for _pid, rec in sent.logs) == [-99, -1.0, 0.5, 1.7]


def test_through_an_sdk_logger(events_module):
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    ev = events_module
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource({"service.name": "svc"}), shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    events = ev.Events(adapter_component=ev.AdapterComponent.ORCHESTRATOR, logger=provider.get_logger("adapter"))
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("t")
    with tracer.start_as_current_span("step") as span:
        events.runtime_status(status=ev.RuntimeStatus.READY, previous_status="starting")
    [data] = exporter.get_finished_logs()
    record = getattr(data, "log_record", data)
    assert record.event_name == "runtime.status"
    assert record.severity_text == "INFO"
    assert dict(record.attributes) == {"runtime.status": "ready", "runtime.previous_status": "starting",
                                       # the provider's resource lacks the identity: it rides on the event
                                       "adapter.component": "orchestrator"}
    assert record.trace_id == span.get_span_context().trace_id
    assert drain(timeout=0.5).logs == []  # nothing went into a ring


def test_generated_module_passes_mypy_strict_and_types_the_calls(generated_dir, tmp_path):
    require_module("mypy")
    good = tmp_path / "good_user.py"
    good.write_text(textwrap.dedent("""
        import contract_events as ev
        events = ev.Events(adapter_component=ev.AdapterComponent.NEUROMORPHIC)
        ok: bool = events.consensus_proposed(vertex=1, proposed_color=2, confidence=0.5)
    """))
    bad = tmp_path / "bad_user.py"
    bad.write_text(textwrap.dedent("""
        import contract_events as ev
        events = ev.Events(adapter_component=ev.AdapterComponent.NEUROMORPHIC)
        events.consensus_proposed(vertex="1", proposed_color=2)
    """))

    def mypy(*files):
        return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                               "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), *map(str, files)],
                              env=_env(MYPYPATH=f"{generated_dir}:{PROJECT_ROOT}"), cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)

    done = mypy(generated_dir / "contract_events.py", good)
    assert done.returncode == 0, done.stdout + done.stderr
    done = mypy(bad)
    assert done.returncode == 1
    assert 'Argument "vertex" to "consensus_proposed" of "Events" has incompatible type "str"' in done.stdout
    assert 'Missing named argument "confidence"' in done.stdout


def test_same_registry_same_bytes(generated_dir, tmp_path):
    first = (generated_dir / "contract_events.py").read_bytes()
    copy = tmp_path / "elsewhere"
    shutil.copytree(PROJECT_ROOT / "semconv", copy / "semconv")
    assert generate("semconv", tmp_path / "again.py", cwd=copy) == first
    assert b"tmp" not in first and str(PROJECT_ROOT).encode() not in first


def test_a_forked_child_writes_its_events_with_their_definitions_into_its_own_ring(events_module):
    ev = events_module
    events = ev.Events(adapter_component=ev.AdapterComponent.NEUROMORPHIC)
    try:
        assert events.memory_allocation(bytes=1024, purpose="parent")
        pid = os.fork()
        if pid == 0:  # the child: its first event creates its own ring
            code = 0 if events.memory_allocation(bytes=2048, purpose="child") else 1
            os._exit(code)
        _pid, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        events.close()
    got = drain(timeout=10.0, until_no_producers=True)
    by_purpose = {rec.attributes["memory.purpose"]: (ring_pid, rec) for ring_pid, rec in got.logs}
    assert set(by_purpose) == {"parent", "child"}
    assert by_purpose["child"][0] == pid and by_purpose["parent"][0] == os.getpid()
    for ring_pid, rec in by_purpose.values():
        resource = got.resource_of(ring_pid, rec)
        assert resource.attributes["adapter.component"] == "neuromorphic"
        assert resource.attributes["process.pid"] == ring_pid


def test_any_registry_upstream_main_gives_a_typed_module(tmp_path):
    """Templates, ``any`` types, dozens of entities and events: the module
    imports, sends, and passes mypy --strict."""
    require_module("mypy")
    sys.path.insert(0, str(PROJECT_ROOT / "tests" / "semconv"))
    from semconv_testdata import UPSTREAM, require
    registry = str(require(UPSTREAM / "main"))
    module = tmp_path / "upstream_events.py"
    generate(registry, module)
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
                           "--cache-dir", str(tmp_path / ".mypy"), str(module)],
                          env=_env(MYPYPATH=str(PROJECT_ROOT)), cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    script = textwrap.dedent("""
        import upstream_events as ev
        events = ev.Events(strict=True)
        assert len(ev.EVENTS) > 20
        assert events.session_start(id="s-1") is True
        print(events.stats()["written"])
    """)
    done = subprocess.run([sys.executable, "-c", script], env=_env(PYTHONPATH=f"{tmp_path}:{PROJECT_ROOT}"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stdout + done.stderr
