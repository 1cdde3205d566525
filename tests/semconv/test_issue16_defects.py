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


# ----------------------------------- 2: one attribute through two ref_groups

V2_TWO_REF_GROUPS = {
    "attrs.yaml": """
        file_format: definition/2
        attributes:
          - key: app.user
            type: string
            brief: The user.
            stability: development
            examples: ["u1"]
          - key: app.tenant
            type: string
            brief: The tenant.
            stability: development
            examples: ["t1"]
        attribute_groups:
          - id: app.who
            visibility: internal
            attributes:
              - ref: app.user
          - id: app.where
            visibility: internal
            attributes:
              - ref: app.tenant
              - ref: app.user
    """,
    "spans.yaml": """
        file_format: definition/2
        spans:
          - type: app.request
            kind: server
            brief: A request.
            stability: development
            attributes:
              - ref_group: app.who
              - ref_group: app.where
    """,
}


def test_attribute_reached_through_two_ref_groups_is_duplicate(make_registry, capsys):
    path = make_registry(V2_TWO_REF_GROUPS)
    from otelplug.semconv import resolve_registry
    with pytest.raises(SemconvError) as info:
        resolve_registry(path)
    [diag] = info.value.diagnostics
    assert diag.kind == "DuplicateAttributeId"
    assert diag.path.endswith("spans.yaml") and diag.line == 9  # the second ref_group
    assert "app.user" in diag.message and "app.who" in diag.message and "app.where" in diag.message
    assert main(["semconv", "check", path]) == 1
    out = capsys.readouterr().out
    assert "spans.yaml:9: error: DuplicateAttributeId:" in out


def test_two_ref_groups_without_overlap_resolve(make_registry):
    files = dict(V2_TWO_REF_GROUPS)
    files["attrs.yaml"] = files["attrs.yaml"].replace("              - ref: app.user\n    \"\"\"", "")
    files["attrs.yaml"] = files["attrs.yaml"].rsplit("              - ref: app.user", 1)[0]
    from otelplug.semconv import resolve_registry
    reg = resolve_registry(make_registry(files))
    assert {a.name for a in reg.by_id["span.app.request"].attributes} == {"app.user", "app.tenant"}
