"""Value constraints (otelplug's registry extension): declarations checked by
``semconv check``, violations reported by live-check with their own ids."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from otelplug.cli.main import main
from otelplug.semconv import SemconvError, resolve_registry
from otelplug.semconv.constraints import Constraints, check_value, predicate
from otelplug.semconv.livecheck import LiveChecker

from semconv_testdata import PROJECT_ROOT

REGISTRY = """
    groups:
      - id: registry.t
        type: attribute_group
        brief: Test attributes.
        attributes:
          - id: t.ratio
            type: double
            stability: development
            brief: In [0, 1].
            examples: [0.5]
            annotations: {otelplug: {constraints: {minimum: 0, maximum: 1}}}
          - id: t.count
            type: int
            stability: development
            brief: Above zero, below 10.
            examples: [3]
            annotations: {otelplug: {constraints: {exclusive_minimum: 0, exclusive_maximum: 10}}}
          - id: t.name
            type: string
            stability: development
            brief: A short lower-case name.
            examples: ["abc"]
            annotations: {otelplug: {constraints: {min_length: 2, max_length: 5, pattern: '[a-z]+'}}}
          - id: t.tags
            type: string[]
            stability: development
            brief: Non-empty list of non-empty tags.
            examples: [["a"]]
            annotations: {otelplug: {constraints: {min_items: 1, min_length: 1}}}
      - id: event.t.happened
        type: event
        name: t.happened
        stability: development
        brief: Something happened.
        attributes:
          - {ref: t.ratio, requirement_level: required}
          - {ref: t.count, requirement_level: required}
          - ref: t.name
            requirement_level: required
            annotations: {otelplug: {constraints: {min_length: 1}}}
          - {ref: t.tags, requirement_level: required}
"""


@pytest.fixture
def checker(resolve):
    return LiveChecker(resolve({"t.yaml": REGISTRY}))


def violations(findings):
    return [(f.id, f.message) for f in findings if f.level == "violation"]


GOOD = {"t.ratio": 0.5, "t.count": 3, "t.name": "abc", "t.tags": ["a"]}


@pytest.mark.parametrize("attr,value,fid,message", [
    ("t.ratio", 1.7, "value_out_of_range", "t.happened: ratio must be between 0 and 1, got 1.7"),
    ("t.ratio", -0.1, "value_out_of_range", "t.happened: ratio must be between 0 and 1, got -0.1"),
    ("t.count", 0, "value_out_of_range", "t.happened: count must be greater than 0 and less than 10, got 0"),
    ("t.count", 10, "value_out_of_range", "t.happened: count must be greater than 0 and less than 10, got 10"),
    ("t.tags", [], "array_too_short", "t.happened: tags must be non-empty, got 0 items"),
    ("t.tags", ["a", ""], "string_length_out_of_range",
     "t.happened: tags must be non-empty, got [1] = '' (0 characters)"),
])
def test_each_kind_of_violation_in_an_event(checker, attr, value, fid, message):
    assert violations(checker.check_log("t.happened", GOOD)) == []
    assert violations(checker.check_log("t.happened", {**GOOD, attr: value})) == [(fid, message)]


def test_string_constraints_and_ref_override(checker):
    # outside the event, the definition's constraints apply
    assert violations(checker.check_attribute("t.name", "a")) == [
        ("string_length_out_of_range", "t.name must be between 2 and 5 characters long, got 'a' (1 characters)")]
    assert violations(checker.check_attribute("t.name", "toolong")) == [
        ("string_length_out_of_range", "t.name must be between 2 and 5 characters long, got 'toolong' (7 characters)")]
    assert violations(checker.check_attribute("t.name", "AB")) == [
        ("pattern_mismatch", "t.name must match '[a-z]+', got 'AB'")]
    # in the event, its ref's own constraints replace them (min_length 1 only)
    assert violations(checker.check_log("t.happened", {**GOOD, "t.name": "a"})) == []
    assert violations(checker.check_log("t.happened", {**GOOD, "t.name": ""})) == [
        ("string_length_out_of_range", "t.happened: name must be non-empty, got '' (0 characters)")]
    # a wrong type is a type_mismatch, not also a constraint violation
    assert [f for f, _m in violations(checker.check_log("t.happened", {**GOOD, "t.ratio": "x"}))] == ["type_mismatch"]
    # constrained values change findings: the sidecar's shape cache keys on them
    assert {"t.ratio", "t.count", "t.name", "t.tags"} <= checker.enum_attributes


@pytest.mark.parametrize("constraints,problem", [
    ("{minimum: 0, exclusive_minimum: 0}", "exclude each other"),
    ("{minimum: 2, maximum: 1}", "allow no value"),
    ("{min_length: 1}", "does not apply to type 'double'"),
    ("{minimum: zero}", "must be a finite number"),
    ("{maximal: 3}", "unknown constraint 'maximal'"),
    ("{maximum: 0.1}", "example must be at most 0.1, got 0.5"),
])
def test_check_reports_bad_declarations_at_their_line(make_registry, capsys, constraints, problem):
    text = REGISTRY.replace("{minimum: 0, maximum: 1}", constraints, 1)
    path = make_registry({"t.yaml": text})
    with pytest.raises(SemconvError) as info:
        resolve_registry(path)
    [diag] = [d for d in info.value.diagnostics if problem in d.message]
    assert "t.ratio" in diag.message
    assert diag.path.endswith("t.yaml") and diag.line == 6  # the attribute's definition
    assert main(["semconv", "check", path]) == 1
    assert "t.yaml:6: error:" in capsys.readouterr().out


def test_bad_pattern_and_int_bounds(make_registry):
    text = REGISTRY.replace("pattern: '[a-z]+'", "pattern: '[a-z'").replace(
        "{exclusive_minimum: 0, exclusive_maximum: 10}", "{minimum: 0.5}")
    with pytest.raises(SemconvError) as info:
        resolve_registry(make_registry({"t.yaml": text}))
    messages = " | ".join(d.message for d in info.value.diagnostics)
    assert "not a valid regular expression" in messages and "must be a whole number" in messages


def test_the_contract_registry_is_valid_and_constrained():
    reg = resolve_registry(str(PROJECT_ROOT / "semconv"))
    checker = LiveChecker(reg)
    assert violations(checker.check_log("consensus.proposed", {
        "consensus.vertex": 1, "consensus.proposed_color": 2, "consensus.confidence": 1.7})) == [
        ("value_out_of_range", "consensus.proposed: confidence must be between 0 and 1, got 1.7")]
    assert violations(checker.check_log("processing.completed", {
        "processing.colors_used": 0, "processing.duration_ms": 1.0, "processing.iterations": 1})) == [
        ("value_out_of_range", "processing.completed: colors_used must be greater than 0, got 0")]
    assert violations(checker.check_resource({"adapter.component": "gpu_kernel", "adapter.gpu_kernel.name": ""})) == [
        ("string_length_out_of_range", "adapter.gpu_kernel.name must be non-empty, got '' (0 characters)")]

CASES = [Constraints(minimum=0, maximum=1), Constraints(exclusive_minimum=0, exclusive_maximum=10),
         Constraints(minimum=-5), Constraints(maximum=2.5), Constraints(min_length=2, max_length=5, pattern="[a-z]+"),
         Constraints(min_length=1), Constraints(min_items=1, minimum=0)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CASES), st.one_of(st.floats(allow_nan=True), st.integers(-20, 20), st.text(max_size=8),
                                         st.booleans(), st.lists(st.integers(-3, 3), max_size=3)))
def test_the_fast_predicate_agrees_with_the_checker(c, value):
    """The sidecar's cache uses predicate(); findings come from check_value()."""
    assert predicate(c)(value) == (check_value(c, value) is None)
