"""Config loading and validation: every error class names its path (and
file:line where it comes from a file) and nothing is reported one at a time."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time

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
    # each at the line of the offending list item, not the pipeline's
    assert 'service::pipelines::traces: references processor "x" which is not configured (cfg.yaml:17)' in errs
    assert 'service::pipelines::traces: references exporter "nope" which is not configured (cfg.yaml:18)' in errs


def test_unknown_keys_are_rejected_by_name():
    errs = errors_of(GOOD.replace("    send_batch_size: 10000", "    send_batch_size: 10000\n    sendbatchsize: 1"))
    assert len(errs) == 1
    assert errs[0].startswith("processors::batch/big: invalid keys: sendbatchsize; "
                              "did you mean 'send_batch_size'? (valid keys: ")
    assert errs[0].endswith("(cfg.yaml:8)")          # the key's own line, not the component's (6)
    errs = errors_of(GOOD + "extra: 1\n")
    assert errs[0].startswith("invalid keys: extra (valid keys: ") and errs[0].endswith("(cfg.yaml:23)")
    errs = errors_of(GOOD.replace("      exporters: [debug]\n", "      exporters: [debug]\n      procesors: []\n"))
    assert errs[0].startswith("service::pipelines::traces: invalid keys: procesors; did you mean 'processors'?")
    assert errs[0].endswith("(cfg.yaml:19)")


def test_unknown_component_type_lists_valid_ones():
    errs = errors_of(GOOD.replace("  debug/2:", "  kafka:\n  debug/2:"))
    assert errs[0].startswith('exporters::kafka: unknown type \'kafka\' for id \'kafka\' (valid values: ')
    assert "debug" in errs[0]
    errs = errors_of(GOOD.replace("  debug/2:", "  debgu/2:").replace("debug, debug/2", "debug, debgu/2"))
    assert errs[0].startswith("exporters::debgu/2: unknown type 'debgu' for id 'debgu/2'; did you mean 'debug'?")
    errs = errors_of(GOOD.replace("processors: [batch]", "processors: [bacth]"))
    assert errs == ['service::pipelines::traces: references processor "bacth" which is not configured; '
                    "did you mean 'batch'? (cfg.yaml:17)"]


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
    assert 'service::pipelines::traces: references processor "batch" multiple times (cfg.yaml:17)' in errs
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
    src = load_text('a: "$${env:X} costs $$5"\nb: ${env:UNSET}\n', environ={"X": "1"})
    assert src.data == {"a": "${env:X} costs $5", "b": None}
    assert src.warnings == ["b: environment variable UNSET is not set; using \"\" (<config>:2)"]
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
    assert f'service::pipelines::traces: references processor "x" which is not configured ({bad}:17)' in no.stderr
    assert "Traceback" not in no.stderr
    missing = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "validate", "--config",
                              str(tmp_path / "nope.yaml")], capture_output=True, text=True)
    assert missing.returncode == 1 and "cannot read config" in missing.stderr


# -- hostile and broken documents (issue 18, items 5 and 9) -------------------

def _bomb(levels=9, width=9) -> str:
    """The classic billion laughs: each anchor a list of `width` aliases of
    the previous one; 9 x 9 expands to 387 million strings."""
    lines = ['a0: &a0 ["lol"' + ',"lol"' * (width - 1) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_quickly_with_its_line():
    text = _bomb()
    assert len(text) < 600
    t0 = time.process_time()
    errs = errors_of(text)
    # the bomb is caught on the event stream: nothing is expanded (the old
    # loader took 24 s and 3.8 GB before a MemoryError)
    assert time.process_time() - t0 < 5
    assert len(errs) == 1 and "expands to more than 100,000 nodes" in errs[0]
    assert errs[0].endswith("(cfg.yaml:6)")            # the alias that crosses the limit
    # modest use of anchors and aliases is still fine
    cfg = load("cfg.yaml", REG, environ={}, text=GOOD.replace("  batch:\n", "  batch: &b {timeout: 1s}\n")
               .replace("    send_batch_size: 10000\n    timeout: 1s\n", "    <<: *b\n    send_batch_size: 10000\n"))
    assert cfg.component(Kind.PROCESSOR, ComponentID("batch", "big")).config.timeout == 1.0


def test_deep_nesting_and_alias_depth_are_refused():
    errs = errors_of("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert errs == ["invalid YAML: nesting deeper than 64 levels (cfg.yaml:1)"]
    block = "".join("  " * i + f"k{i}:\n" for i in range(70)) + "  " * 70 + "v: 1\n"
    errs = errors_of(block)
    assert errs == ["invalid YAML: nesting deeper than 64 levels (cfg.yaml:65)"]
    # depth reached through aliases counts too: 40 levels used at depth 40
    deep = "a: &d " + "[" * 40 + "]" * 40 + "\n" + "b: " + "[" * 39 + "*d" + "]" * 39 + "\n"
    assert errors_of(deep) == ["invalid YAML: nesting deeper than 64 levels (cfg.yaml:2)"]


def test_oversized_binary_and_latin1_files_are_clear_errors(tmp_path):
    from otelplug.sidecar.config.yaml_source import MAX_CONFIG_BYTES
    cases = {
        "latin1.yaml": ("receivers:\n  shm:\n# caf\xe9\n".encode("latin-1"),
                        "the config is not UTF-8 text: byte 0xe9 at column 6", 3),
        "binary.yaml": (bytes(range(256)) * 4, "the config is not UTF-8 text: byte 0x80 at column 118", 2),
        "control.yaml": (b"receivers:\n  shm: \x07\n", "invalid YAML: character #x0007 is not allowed", 2),
        "big.yaml": (b"#" * (MAX_CONFIG_BYTES + 1), "the config is larger than 4 MiB", None),
    }
    for name, (content, message, line) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ConfigErrors) as ei:
            load(str(path), REG, environ={})
        (err,) = ei.value.errors
        assert str(err).startswith(message), (name, str(err))
        assert err.location == (f"{path}:{line}" if line else str(path)), name


def test_python_tags_are_refused_not_built(tmp_path):
    marker = tmp_path / "pwned"
    errs = errors_of(f"receivers: !!python/object/apply:os.system ['touch {marker}']\n")
    assert len(errs) == 1 and "could not determine a constructor for the tag" in errs[0]
    assert "python/object/apply:os.system" in errs[0] and errs[0].endswith("(cfg.yaml:1)")
    assert not marker.exists()


def test_duplicate_keys_name_both_lines():
    text = GOOD + "  pipelines:\n    logs: {receivers: [shm], exporters: [debug]}\n"
    errs = errors_of(text)
    assert errs == ["service::pipelines: duplicate key 'pipelines' (first at line 14); "
                    "YAML would silently keep only the last (cfg.yaml:23)"]
    errs = errors_of("receivers:\n  shm:\n  shm: {channels: [a]}\n")
    assert errs == ["receivers::shm: duplicate key 'shm' (first at line 2); "
                    "YAML would silently keep only the last (cfg.yaml:3)"]


def test_connector_cycles_are_named():
    errs = errors_of("""
    receivers: {shm: }
    connectors: {forward: , forward/back: }
    exporters: {debug: }
    service:
      pipelines:
        traces: {receivers: [shm, forward/back], exporters: [forward]}
        traces/2: {receivers: [forward], exporters: [forward/back, debug]}
        traces/self: {receivers: [shm], exporters: [debug]}
    """)
    assert errs == ["service::pipelines: connectors form a cycle, data would loop forever: "
                    "traces -[forward]-> traces/2 -[forward/back]-> traces (cfg.yaml:7)"]
    errs = errors_of("""
    receivers: {shm: }
    connectors: {forward: }
    exporters: {debug: }
    service:
      pipelines:
        logs: {receivers: [shm, forward], exporters: [forward, debug]}
    """)
    assert errs == ["service::pipelines: connectors form a cycle, data would loop forever: "
                    "logs -[forward]-> logs (cfg.yaml:7)"]
    # a chain (no way back) is fine
    load("cfg.yaml", REG, environ={}, text=GOOD.replace("exporters:\n  debug:", "connectors:\n  forward:\nexporters:\n  debug:")
         .replace("exporters: [debug, debug/2]", "exporters: [debug, forward]")
         + "    traces/3: {receivers: [forward], exporters: [debug]}\n")


def test_missing_env_variable_is_named_with_its_config_path():
    errs = errors_of("""
    receivers: {shm: }
    exporters:
      otlp: {endpoint: "${env:COLLECTOR_ENDPOINT}", tls: {insecure: true}}
    service:
      pipelines:
        traces: {receivers: [shm], exporters: [otlp]}
    """)
    assert errs == ["exporters::otlp::endpoint: expected a string, got None "
                    "(environment variable COLLECTOR_ENDPOINT is not set) (cfg.yaml:4)"]


def test_validate_cli_has_no_traceback_for_hostile_files(tmp_path):
    files = {"bomb.yaml": _bomb().encode(), "bin.yaml": b"\xff\xfe\x00garbage",
             "obj.yaml": b"a: !!python/object:os.system {}\n",
             "deep.yaml": b"a: " + b"[" * 100_000 + b"]" * 100_000 + b"\n"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        r = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "validate", "--config",
                            str(tmp_path / name)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "Traceback" not in r.stderr, (name, r.stderr)
        assert re.search(rf"\({re.escape(str(tmp_path / name))}:\d+\)$", r.stderr.strip()), r.stderr


def test_validate_cli_builds_the_graph(tmp_path):
    """Checks that need the built graph run in validate too, not only at start."""
    bad = tmp_path / "two.yaml"
    bad.write_text("""
receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4999}}}}
exporters: {debug: }
extensions: {health_check: {endpoint: 127.0.0.1:4999}}
service:
  extensions: [health_check]
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
""")
    r = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "validate", "--config", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert ("receivers::otlp: cannot listen on 127.0.0.1:4999: extensions::health_check listens there too"
            in r.stderr), r.stderr
