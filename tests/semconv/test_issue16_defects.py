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


# ---------------------------------------------------------- 10: live-check

LIVE_REGISTRY = {
    "a.yaml": """
        groups:
          - id: registry.app
            type: attribute_group
            brief: App attributes.
            attributes:
              - id: app.user
                type: string
                stability: development
                brief: The user.
                examples: [bob]
              - id: app.login
                type: string
                stability: development
                brief: Old name of app.user.
                deprecated: {reason: renamed, renamed_to: app.user}
                examples: [bob]
              - id: app.legacy
                type: string
                stability: development
                brief: Gone.
                deprecated: {reason: obsoleted, note: No replacement.}
                examples: [x]
    """,
}


def _write_samples(tmp_path, attrs):
    path = tmp_path / "samples.json"
    path.write_text(json.dumps([{"span": {"name": "work", "kind": "internal", "attributes": [
        {"name": k, "value": v} for k, v in attrs.items()]}}]))
    return str(path)


def test_live_check_deprecated_once_names_replacement_and_prints_readable_stats(make_registry, tmp_path, capsys):
    registry = make_registry(LIVE_REGISTRY)
    samples = _write_samples(tmp_path, {"app.login": "bob", "app.legacy": "x", "app.user": "bob",
                                        "otelplug.semconv.findings": ["deprecated:app.login"],
                                        "otelplug.semconv.level": "violation"})
    assert main(["semconv", "live-check", "--registry", registry, "--input", samples, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    by_attr = {}
    for f in report["findings"]:
        by_attr.setdefault(f["context"].get("attribute_key"), []).append(f["id"])
    # one finding per deprecated attribute, none for otelplug's own annotations
    assert by_attr == {"app.login": ["deprecated"], "app.legacy": ["deprecated"], "app.user": ["not_stable"]}
    login = next(f for f in report["findings"] if f["context"].get("attribute_key") == "app.login")
    assert login["message"] == "Attribute 'app.login' is deprecated; renamed to 'app.user'."
    assert login["context"]["renamed_to"] == "app.user"
    legacy = next(f for f in report["findings"] if f["context"].get("attribute_key") == "app.legacy")
    assert legacy["message"] == "Attribute 'app.legacy' is deprecated; reason: obsoleted (No replacement)."
    assert report["statistics"]["seen_non_registry_attributes"] == {}
    assert report["statistics"]["advice_type_counts"] == {"deprecated": 2, "not_stable": 1}

    assert main(["semconv", "live-check", "--registry", registry, "--input", samples]) == 1
    text = capsys.readouterr().out
    assert "{" not in text and "}" not in text  # no Python dicts
    assert "samples: 6 (attribute 5, span 1)" in text
    assert "findings: 3 (information 1, violation 2)" in text
    assert "  deprecated  2" in text and "  not_stable  1" in text
    assert "registry coverage: attributes 3/3 (100.0%)" in text


def test_sidecar_annotation_attributes_are_the_ones_otelplug_declares():
    from otelplug.semconv import resolve_registry
    from otelplug.semconv.livecheck import SIDECAR_ATTRIBUTES
    from otelplug.sidecar.semconvcheck.findings import FINDINGS_ATTRIBUTE, LEVEL_ATTRIBUTE
    from semconv_testdata import PROJECT_ROOT
    assert SIDECAR_ATTRIBUTES == {FINDINGS_ATTRIBUTE, LEVEL_ATTRIBUTE}
    own = resolve_registry(str(PROJECT_ROOT / "semconv"))
    assert SIDECAR_ATTRIBUTES <= set(own.attributes)


# ------------------------------------- 11: check --baseline, file:line, text

BASELINE = """
    groups:
      - id: registry.app
        type: attribute_group
        brief: App attributes.
        attributes:
          - id: app.count
            type: int
            stability: stable
            brief: A count.
            examples: [1]
          - id: app.gone
            type: string
            stability: stable
            brief: Removed later.
            examples: [x]
      - id: metric.app.work
        type: metric
        metric_name: app.work
        stability: stable
        brief: Work.
        instrument: counter
        unit: "{item}"
"""
# the next release: app.count changes type, app.gone is removed, the metric changes unit
CURRENT = (BASELINE[:BASELINE.index("      - id: app.gone")] + BASELINE[BASELINE.index("  - id: metric.app.work"):]) \
    .replace("type: int", "type: string").replace("examples: [1]", 'examples: ["1"]') \
    .replace('unit: "{item}"', 'unit: "s"')


def test_check_baseline_findings_have_file_line_and_no_raw_context(make_registry, capsys):
    old = make_registry({"app.yaml": BASELINE}, name="old")
    new = make_registry({"app.yaml": CURRENT}, name="new")
    assert main(["semconv", "check", new, "--baseline", old]) == 1
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "compatibility_" in ln]
    assert lines == [
        f"{new}/app.yaml:6: violation: compatibility_stable_attribute_changed_type: "
        "Attribute 'app.count' was int, but has new type 'string'",
        f"{old}/app.yaml:11: violation: compatibility_removed_attribute: "
        "Attribute 'app.gone' no longer exists in the attribute registry (where the baseline defined it)",
        f"{new}/app.yaml:11: violation: compatibility_metric_changed_unit: "
        "Metric 'app.work' cannot change unit (was '{item}', now: 's')",
    ]
    assert main(["semconv", "check", new, "--baseline", old, "--format", "json"]) == 1
    compat = json.loads(capsys.readouterr().out)["compatibility"]
    assert [(f["path"], f["line"], f["in_baseline"]) for f in compat] == [
        (f"{new}/app.yaml", 6, False), (f"{old}/app.yaml", 11, True), (f"{new}/app.yaml", 11, False)]
