"""Semantic-convention defects of issue 16 (2, 3, 10, 11), one test each."""
from __future__ import annotations

import json

import pytest
import yaml

from otelplug.cli.main import main
from otelplug.semconv import SemconvError

from semconv_testdata import UPSTREAM, require


# ------------------------------------------------ 3: resolve --format yaml

@pytest.mark.parametrize("version", ["v1.43.0", "main"])
def test_resolve_yaml_prints_upstream_registries_like_json(version, capsys):
    path = str(require(UPSTREAM / version))
    assert main(["semconv", "resolve", "--format", "yaml", path]) == 0
    as_yaml = yaml.load(capsys.readouterr().out, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert main(["semconv", "resolve", "--format", "json", path]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert as_yaml == as_json
    # the nested annotation mappings that used to crash the YAML printer
    nested = [g for g in as_yaml["groups"]
              if any(isinstance(v, dict) for v in (g.get("annotations") or {}).values())
              or any(isinstance(v, dict) for a in g["attributes"] for v in (a.get("annotations") or {}).values())]
    assert nested, "expected upstream groups with nested annotations"
