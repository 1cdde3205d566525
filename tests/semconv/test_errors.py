"""Every resolution/validation error, on hand-made registries, with file:line."""
from __future__ import annotations

import os

import pytest

from otelplug.semconv import SemconvError, load_registry, resolve_registry

BASE = """
groups:
  - id: registry.demo
    type: attribute_group
    brief: Demo attributes.
    attributes:
      - id: demo.name
        type: string
        stability: stable
        brief: A name.
        examples: ["x"]
"""


def line_of(path, needle):
    """1-based line of the first line containing ``needle`` in a file."""
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if needle in text:
                return number
    raise AssertionError(f"{needle!r} not in {path}")


def errors_of(make_registry, files):
    path = make_registry(files)
    with pytest.raises(SemconvError) as info:
        resolve_registry(path)
    return path, info.value.diagnostics


def only(diags, kind):
    found = [d for d in diags if d.kind == kind]
    assert found, f"no {kind} in {[d.format() for d in diags]}"
    return found


def test_unresolved_attribute_ref(make_registry):
    path, diags = errors_of(make_registry, {"a.yaml": BASE, "b.yaml": """
        groups:
          - id: metric.demo
            type: metric
            metric_name: demo.count
            stability: development
            brief: Count.
            instrument: counter
            unit: "1"
            attributes:
              - ref: demo.name
              - ref: demo.unknown
        """})
    (diag,) = only(diags, "UnresolvedAttributeRef")
    assert diag.details == {"group_id": "metric.demo", "attribute_ref": "demo.unknown"}
    assert diag.path == os.path.join(path, "b.yaml")
    assert diag.line == line_of(diag.path, "ref: demo.unknown") == 11
    assert f"{path}/b.yaml:11" in diag.format()


def test_unresolved_extends(make_registry):
    _path, diags = errors_of(make_registry, {"a.yaml": BASE + """
  - id: group.child
    type: attribute_group
    brief: Child.
    extends: group.missing
    attributes:
      - ref: demo.name
"""})
    (diag,) = only(diags, "UnresolvedExtendsRef")
    assert diag.details["extends_ref"] == "group.missing"
    assert diag.line == line_of(diag.path, "id: group.child")


def test_extends_cycle_is_reported_not_looped(make_registry):
    _path, diags = errors_of(make_registry, {"a.yaml": BASE + """
  - id: group.a
    type: attribute_group
    brief: A.
    extends: group.b
  - id: group.b
    type: attribute_group
    brief: B.
    extends: group.a
"""})
    assert only(diags, "UnresolvedExtendsRef")


def test_duplicate_group_id(make_registry):
    path, diags = errors_of(make_registry, {"a.yaml": BASE, "b.yaml": BASE.replace("demo.name", "demo.other")})
    (diag,) = only(diags, "DuplicateGroupId")
    assert diag.details["group_id"] == "registry.demo"
    assert diag.details["provenances"] == [os.path.join(path, "a.yaml"), os.path.join(path, "b.yaml")]
    assert diag.line == 2


def test_duplicate_attribute_id(make_registry):
    _path, diags = errors_of(make_registry, {"a.yaml": BASE, "b.yaml": BASE.replace("registry.demo", "registry.again")})
    (diag,) = only(diags, "DuplicateAttributeId")
    assert diag.details == {"attribute_id": "demo.name", "group_ids": ["registry.demo", "registry.again"]}
    assert diag.line == 6


def test_duplicate_metric_name(make_registry):
    metric = """
        groups:
          - id: {id}
            type: metric
            metric_name: demo.count
            stability: development
            brief: Count.
            instrument: counter
            unit: "1"
    """
    _path, diags = errors_of(make_registry, {"a.yaml": metric.format(id="metric.one"),
                                             "b.yaml": metric.format(id="metric.two")})
    (diag,) = only(diags, "DuplicateMetricName")
    assert diag.details["metric_name"] == "demo.count"


def test_span_missing_span_kind(make_registry):
    _path, diags = errors_of(make_registry, {"a.yaml": BASE + """
  - id: span.demo
    type: span
    stability: development
    brief: A span.
    attributes:
      - ref: demo.name
"""})
    (diag,) = only(diags, "InvalidSpanMissingSpanKind")
    assert diag.line == line_of(diag.path, "id: span.demo") and diag.details["group_id"] == "span.demo"


def test_metric_without_instrument(make_registry):
    _path, diags = errors_of(make_registry, {"a.yaml": """
        groups:
          - id: metric.x
            type: metric
            metric_name: x
            stability: development
            brief: X.
            unit: "1"
    """})
    assert "instrument" in only(diags, "InvalidMetric")[0].message


def test_invalid_example_is_a_warning_with_location(make_registry):
    path = make_registry({"a.yaml": """
        groups:
          - id: registry.x
            type: attribute_group
            brief: X.
            attributes:
              - id: x.count
                type: int
                stability: stable
                brief: A count.
                examples: ["three"]
    """})
    registry = resolve_registry(path)  # warnings do not stop resolution
    (warn,) = [w for w in registry.warnings if w.kind == "InvalidExample"]
    assert warn.severity == "warning" and warn.details["attribute_id"] == "x.count"
    assert warn.line == line_of(warn.path, "id: x.count")


def test_invalid_yaml_reports_line(make_registry):
    path = make_registry({"a.yaml": "groups:\n  - id: x\n    brief: [unclosed\n"})
    with pytest.raises(SemconvError) as info:
        load_registry(path)
    (diag,) = info.value.diagnostics
    assert diag.kind == "InvalidYaml" and diag.path.endswith("a.yaml") and diag.line in (3, 4)


@pytest.mark.parametrize("snippet,kind", [
    ("type: strin", "InvalidAttributeType"),
    ("type: string\n        stability: solid", "InvalidStability"),
    ("type: string\n        requirement_level: sometimes", "InvalidRequirementLevel"),
    ("type: string\n        deprecated: {reason: vanished}", "InvalidDeprecated"),
])
def test_invalid_field_values(make_registry, snippet, kind):
    text = f"""
groups:
  - id: registry.x
    type: attribute_group
    brief: X.
    attributes:
      - id: x.a
        brief: A.
        examples: ["a"]
        {snippet}
"""
    path = make_registry({"a.yaml": text})
    with pytest.raises(SemconvError) as info:
        load_registry(path)
    diag = only(info.value.diagnostics, kind)[0]
    assert diag.path.endswith("a.yaml") and diag.line


def test_group_without_type_or_brief(make_registry):
    path = make_registry({"a.yaml": "groups:\n  - id: x\n    attributes: []\n"})
    with pytest.raises(SemconvError) as info:
        load_registry(path)
    assert {"InvalidGroupMissingType", "InvalidSemConvSpec"} <= set(info.value.kinds)


def test_unknown_ref_group(make_registry):
    _path, diags = errors_of(make_registry, {"a.yaml": """
        file_format: definition/2
        attributes:
          - key: x.a
            type: string
            brief: A.
            stability: stable
            examples: ["a"]
        metrics:
          - name: x.count
            brief: Count.
            stability: development
            instrument: counter
            unit: "1"
            attributes:
              - ref_group: no.such.group
    """})
    assert only(diags, "UnresolvedGroupRef")[0].details["group_ref"] == "no.such.group"


def test_unknown_refinement_base(make_registry):
    _path, diags = errors_of(make_registry, {"a.yaml": """
        file_format: definition/2
        span_refinements:
          - id: span.refined
            ref: no.such.span
            brief: Refined.
    """})
    assert only(diags, "UnresolvedRefinementRef")


def test_dependency_not_found_and_cycle(make_registry, tmp_path):
    path = make_registry({"manifest.yaml": "name: main\ndependencies:\n  - name: dep\n    registry_path: nowhere\n",
                          "a.yaml": BASE})
    with pytest.raises(SemconvError) as info:
        load_registry(path)
    (diag,) = info.value.diagnostics
    assert diag.kind == "RegistryNotFound" and diag.path.endswith("manifest.yaml") and diag.line == 3

    a = make_registry({"manifest.yaml": f"name: a\ndependencies:\n  - registry_path: {tmp_path}/b\n"}, name="a")
    make_registry({"manifest.yaml": f"name: b\ndependencies:\n  - registry_path: {tmp_path}/a\n"}, name="b")
    with pytest.raises(SemconvError) as info:
        load_registry(a)
    assert info.value.kinds == ["CircularDependency"]


def test_all_errors_reported_in_one_run(make_registry):
    _path, diags = errors_of(make_registry, {"a.yaml": BASE + """
  - id: group.x
    type: attribute_group
    brief: X.
    attributes:
      - ref: nope.one
      - ref: nope.two
"""})
    assert [d.details["attribute_ref"] for d in diags] == ["nope.one", "nope.two"]
