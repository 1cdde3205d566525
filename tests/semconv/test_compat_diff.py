"""Backward-compatibility findings and diff categories on hand-made pairs."""
from __future__ import annotations

import pytest

from otelplug.semconv.compat import check_compatibility
from otelplug.semconv.diff import diff_registries, diff_to_markdown, diff_to_text

BASE = """
groups:
  - id: registry.x
    type: attribute_group
    brief: X.
    attributes:
      - id: x.kept
        type: string
        stability: stable
        brief: Kept.
        examples: ["a"]
      - id: x.gone
        type: string
        stability: development
        brief: Gone.
        examples: ["a"]
      - id: x.retyped
        type: int
        stability: stable
        brief: Retyped.
      - id: x.destabilised
        type: string
        stability: stable
        brief: Destabilised.
        examples: ["a"]
      - id: x.enum
        type:
          members:
            - {id: a, value: A, stability: stable}
            - {id: b, value: B, stability: stable}
            - {id: c, value: C, stability: development}
        stability: stable
        brief: Enum.
      - id: x.renamed
        type: string
        stability: development
        brief: Renamed later.
        examples: ["a"]
      - id: x.obsoleted
        type: string
        stability: development
        brief: Obsoleted later.
        examples: ["a"]
      - id: x.uncategorized
        type: string
        stability: development
        brief: Deprecated later.
        examples: ["a"]
  - id: metric.x.m
    type: metric
    metric_name: x.m
    stability: stable
    brief: M.
    instrument: counter
    unit: s
  - id: metric.x.removed
    type: metric
    metric_name: x.removed
    stability: development
    brief: Removed.
    instrument: counter
    unit: s
  - id: event.x.e
    type: event
    name: x.e
    stability: stable
    brief: E.
    attributes:
      - ref: x.kept
      - ref: x.destabilised
  - id: span.x.s
    type: span
    span_kind: server
    stability: stable
    brief: S.
    attributes:
      - ref: x.kept
  - id: entity.x.thing
    type: entity
    name: x.thing
    stability: stable
    brief: Thing.
    attributes:
      - ref: x.kept
        role: identifying
      - ref: x.destabilised
        role: descriptive
"""

CURRENT = """
groups:
  - id: registry.x
    type: attribute_group
    brief: X.
    attributes:
      - id: x.kept
        type: string
        stability: stable
        brief: Kept.
        examples: ["a"]
      - id: x.retyped
        type: string
        stability: stable
        brief: Retyped.
        examples: ["a"]
      - id: x.destabilised
        type: string
        stability: development
        brief: Destabilised.
        examples: ["a"]
      - id: x.enum
        type:
          members:
            - {id: a, value: A2, stability: stable}
            - {id: c, value: C, stability: development}
        stability: stable
        brief: Enum.
      - id: x.renamed
        type: string
        stability: development
        brief: Renamed.
        examples: ["a"]
        deprecated: {reason: renamed, renamed_to: x.kept}
      - id: x.obsoleted
        type: string
        stability: development
        brief: Obsoleted.
        examples: ["a"]
        deprecated: {reason: obsoleted, note: No replacement.}
      - id: x.uncategorized
        type: string
        stability: development
        brief: Deprecated.
        examples: ["a"]
        deprecated: {reason: uncategorized}
      - id: x.new
        type: string
        stability: development
        brief: New.
        examples: ["a"]
  - id: metric.x.m
    type: metric
    metric_name: x.m
    stability: stable
    brief: M.
    instrument: gauge
    unit: ms
    attributes:
      - ref: x.kept
        requirement_level: required
      - ref: x.new
        requirement_level: opt_in
  - id: event.x.e
    type: event
    name: x.e
    stability: development
    brief: E.
    attributes:
      - ref: x.destabilised
  - id: span.x.s
    type: span
    span_kind: client
    stability: stable
    brief: S.
  - id: entity.x.thing
    type: entity
    name: x.thing
    stability: stable
    brief: Thing.
    attributes:
      - ref: x.retyped
        role: identifying
"""


@pytest.fixture
def pair(resolve):
    return resolve({"a.yaml": BASE}), resolve({"a.yaml": CURRENT})


def test_compat_findings(pair):
    findings = check_compatibility(*pair)
    got = {(f.id, f.signal_name, tuple(sorted((k, str(v)) for k, v in f.context.items()))) for f in findings}
    expected = {
        ("compatibility_removed_attribute", None, (("attribute_key", "x.gone"),)),
        ("compatibility_stable_attribute_changed_type", None,
         (("attribute_key", "x.retyped"), ("attribute_type", "string"), ("previous_attribute_type", "int"))),
        ("compatibility_stable_attribute_now_unstable", None, (("attribute_key", "x.destabilised"),)),
        ("compatibility_stable_enum_member_missing", None, (("attribute_key", "x.enum"), ("member_id", "b"))),
        ("compatibility_stable_enum_member_changed_from_stable", None,
         (("attribute_key", "x.enum"), ("current_value", "A"), ("previous_value", "A"))),
        ("compatibility_metric_missing", "x.removed", ()),
        ("compatibility_metric_changed_unit", "x.m", (("current_unit", "ms"), ("previous_unit", "s"))),
        ("compatibility_metric_changed_instrument", "x.m",
         (("current_instrument", "gauge"), ("previous_instrument", "counter"))),
        ("compatibility_metric_added_attributes", "x.m", (("added_attributes", "['x.kept']"),)),
        ("compatibility_event_changed_stability", "x.e", ()),
        ("compatibility_event_dropped_attributes", "x.e", (("missing_attributes", "['x.kept']"),)),
        ("compatibility_span_changed_kind", "x.s", (("current", "client"), ("previous", "server"))),
        ("compatibility_span_dropped_attributes", "x.s", (("missing_attributes", "['x.kept']"),)),
        ("compatibility_entity_changed_identity", "x.thing", (("added_attributes", "['x.retyped']"),)),
        ("compatibility_entity_missing_attribute", "x.thing", (("identity_missing_attributes", "['x.kept']"),)),
        ("compatibility_entity_missing_attribute", "x.thing",
         (("description_missing_attributes", "['x.destabilised']"),)),
    }
    assert got == expected
    assert all(f.level == "violation" for f in findings)


def test_removed_signals(resolve):
    base = resolve({"a.yaml": BASE})
    empty = resolve({"a.yaml": "groups: []\n"})
    ids = {(f.id, f.signal_name) for f in check_compatibility(base, empty)}
    assert {("compatibility_span_missing", "x.s"), ("compatibility_event_removed", "x.e"),
            ("compatibility_entity_missing", "x.thing"), ("compatibility_metric_missing", "x.m")} <= ids


def test_diff_categories(pair):
    diff = diff_registries(*pair)
    attrs = diff["attributes"]
    assert attrs["added"] == [{"name": "x.new"}]
    assert attrs["removed"] == [{"name": "x.gone"}]
    assert attrs["renamed"] == [{"name": "x.renamed", "new_name": "x.kept"}]
    assert attrs["obsoleted"] == [{"name": "x.obsoleted", "note": "No replacement."}]
    assert attrs["uncategorized"] == [{"name": "x.uncategorized"}]
    assert diff["metrics"]["removed"] == [{"name": "x.removed"}]
    markdown = diff_to_markdown(diff, "base", "head")
    assert "### Renamed (1)" in markdown and "`x.renamed` -> `x.kept`" in markdown
    text = diff_to_text(diff)
    assert "attributes        removed       x.gone" in text
