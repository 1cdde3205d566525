"""Config loading and validation: every error class names its path (and
file:line where it comes from a file) and nothing is reported one at a time."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from otelplug.sidecar.component import ComponentID, Kind, PipelineID
from otelplug.sidecar.config import ConfigErrors
from otelplug.sidecar.config.decode import Duration
from otelplug.sidecar.config.model import load
from otelplug.sidecar.factories import Registry

REG = Registry.default()

GOOD = """
receivers:
  shm:
processors:
  batch:
  batch/big:
    send_batch_size: 10000
    timeout: 1s
exporters:
  debug:
  debug/2:
    verbosity: normal
service:
  pipelines:
    traces:
      receivers: [shm]
      processors: [batch]
      exporters: [debug]
    traces/2:
      receivers: [shm]
      processors: [batch/big]
      exporters: [debug, debug/2]
"""


def errors_of(text, environ=None):
    with pytest.raises(ConfigErrors) as ei:
        load("cfg.yaml", REG, environ=environ or {}, text=textwrap.dedent(text))
    return [str(e) for e in ei.value.errors]


def test_good_config_builds_typed_components():
    cfg = load("cfg.yaml", REG, environ={}, text=GOOD)
    assert set(map(str, cfg.pipelines)) == {"traces", "traces/2"}
    big = cfg.component(Kind.PROCESSOR, ComponentID("batch", "big")).config
    assert big.send_batch_size == 10000 and big.timeout == 1.0
    default = cfg.component(Kind.PROCESSOR, ComponentID("batch")).config
    assert default.send_batch_size == 8192 and default.timeout == pytest.approx(0.2)
    p2 = cfg.pipelines[PipelineID("traces", "2")]
    assert [str(e) for e in p2.exporters] == ["debug", "debug/2"]


def test_batch_max_size_rule_has_its_path():
    errs = errors_of(GOOD.replace("    timeout: 1s", "    timeout: 1s\n    send_batch_max_size: 5"))
    assert errs == ["processors::batch/big: send_batch_max_size must be >= send_batch_size (cfg.yaml:6)"]


def test_pipeline_references_unconfigured_components():
    errs = errors_of(GOOD.replace("processors: [batch]", "processors: [x]")
                     .replace("exporters: [debug]\n", "exporters: [nope]\n"))
    assert 'service::pipelines::traces: references processor "x" which is not configured (cfg.yaml:15)' in errs
    assert 'service::pipelines::traces: references exporter "nope" which is not configured (cfg.yaml:15)' in errs


def test_unknown_keys_are_rejected_by_name():
    errs = errors_of(GOOD.replace("    send_batch_size: 10000", "    send_batch_size: 10000\n    sendbatchsize: 1"))
    assert len(errs) == 1
    assert errs[0].startswith("processors::batch/big: invalid keys: sendbatchsize (valid keys: ")
    errs = errors_of(GOOD + "extra: 1\n")
    assert errs[0].startswith("invalid keys: extra")
    errs = errors_of(GOOD.replace("      exporters: [debug]\n", "      exporters: [debug]\n      procesors: []\n"))
    assert errs[0].startswith("service::pipelines::traces: invalid keys: procesors")


def test_unknown_component_type_lists_valid_ones():
    errs = errors_of(GOOD.replace("  debug/2:", "  kafka:\n  debug/2:"))
    assert errs[0].startswith('exporters::kafka: unknown type \'kafka\' for id \'kafka\' (valid values: ')
    assert "debug" in errs[0]


def test_type_errors_and_durations():
    errs = errors_of(GOOD.replace("send_batch_size: 10000", "send_batch_size: lots")
                     .replace("timeout: 1s", "timeout: 5"))
    assert "processors::batch/big::send_batch_size: expected an integer, got 'lots' (cfg.yaml:7)" in errs
    assert any(e.startswith("processors::batch/big::timeout: invalid duration 5") for e in errs)
    assert Duration.parse("1m30s") == 90 and Duration.parse("250us") == pytest.approx(250e-6)
    with pytest.raises(ValueError):
        Duration.parse("5 parsecs")


def test_pipelines_need_receivers_and_exporters_and_valid_ids():
    errs = errors_of("""
    receivers: {shm: }
    exporters: {debug: }
    service:
      pipelines:
        traces: {receivers: [], exporters: []}
        spans: {receivers: [shm], exporters: [debug]}
    """)
    assert "service::pipelines::traces: must have at least one receiver (cfg.yaml:6)" in errs
    assert "service::pipelines::traces: must have at least one exporter (cfg.yaml:6)" in errs
    assert any(e.startswith("service::pipelines::spans: pipeline 'spans': the signal must be") for e in errs)


def test_no_pipelines_and_duplicates_and_extensions():
    assert errors_of("receivers: {shm: }\n") == ["service::pipelines: at least one pipeline must be configured (cfg.yaml:1)"]
    errs = errors_of(GOOD.replace("processors: [batch]", "processors: [batch, batch]")
                     + "  extensions: [health_check]\n")
    assert 'service::pipelines::traces: references processor "batch" multiple times (cfg.yaml:15)' in errs
    assert 'service::extensions: references extension "health_check" which is not configured (cfg.yaml:23)' in errs


def test_connector_must_be_used_on_both_sides():
    errs = errors_of(GOOD.replace("exporters:\n  debug:", "connectors:\n  forward:\nexporters:\n  debug:")
                     .replace("exporters: [debug, debug/2]", "exporters: [debug, forward]"))
    assert errs == ["connectors::forward: a connector must be used as both receiver and exporter (cfg.yaml:10)"]


def test_env_substitution_typed_defaults_and_escape():
    text = """
    receivers:
      shm:
        channels: ["${env:CH}", "x${CH2:-two}", "${env:MISSING:-dflt}"]
        max_batch_records: ${env:N}
    exporters:
      debug:
    service:
      pipelines:
        logs: {receivers: [shm], exporters: [debug]}
    """
    cfg = load("c.yaml", REG, environ={"CH": "a", "N": "77"}, text=textwrap.dedent(text))
    shm = cfg.component(Kind.RECEIVER, ComponentID("shm")).config
    assert shm.channels == ["a", "xtwo", "dflt"] and shm.max_batch_records == 77
    from otelplug.sidecar.config.yaml_source import load_text
    data, _, warnings = load_text('a: "$${env:X} costs $$5"\nb: ${env:UNSET}\n', environ={"X": "1"})
    assert data == {"a": "${env:X} costs $5", "b": None}
    assert warnings == ["b: environment variable UNSET is not set; using \"\""]
    errs = errors_of(text.replace("${env:N}", "${env:bad-name}"), environ={"CH": "a"})
    assert any("invalid reference '${env:bad-name}'" in e for e in errs)


def test_yaml_syntax_error_names_file_and_line():
    errs = errors_of("receivers:\n  shm: [\n")
    assert len(errs) == 1 and "cfg.yaml:3" in errs[0] and errs[0].startswith("invalid YAML")


def test_component_validate_rules():
    errs = errors_of("""
    receivers: {shm: {channels: ["bad.name"]}}
    processors:
      memory_limiter: {check_interval: 0s, limit_mib: 100, spike_limit_mib: 200}
    exporters: {debug: }
    service:
      pipelines:
        traces: {receivers: [shm], processors: [memory_limiter], exporters: [debug]}
    """)
    assert any(e.startswith("receivers::shm::channels::0: invalid otelplug channel name") for e in errs)
    assert "processors::memory_limiter: check_interval must be greater than zero (cfg.yaml:4)" in errs
    assert "processors::memory_limiter: 'spike_limit_mib' must be smaller than 'limit_mib' (cfg.yaml:4)" in errs


def test_validate_cli_exit_codes(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("processors: [batch]", "processors: [x]"))
    ok = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "validate", "--config", str(good)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "valid (2 pipelines)" in ok.stdout
    no = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "validate", "--config", str(bad)],
                        capture_output=True, text=True)
    assert no.returncode == 1
    assert f'service::pipelines::traces: references processor "x" which is not configured ({bad}:15)' in no.stderr
    assert "Traceback" not in no.stderr
    missing = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "validate", "--config",
                              str(tmp_path / "nope.yaml")], capture_output=True, text=True)
    assert missing.returncode == 1 and "cannot read config" in missing.stderr
