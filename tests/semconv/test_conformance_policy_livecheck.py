"""Weaver's compatibility-policy, live-check and parser fixtures."""
from __future__ import annotations

import json
import os

import pytest

from otelplug.semconv import SemconvError, load_registry, resolve_registry
from otelplug.semconv.compat import check_compatibility
from otelplug.semconv.livecheck import LiveChecker
from otelplug.semconv.samples import check_samples, read_samples
from otelplug.semconv.stats import LiveCheckStats

from semconv_testdata import WEAVER_TESTS, require

COMPAT = WEAVER_TESTS / "policy" / "backwards-compatibility"
LIVE = WEAVER_TESTS / "live-check"
PARSE = WEAVER_TESTS / "semconv-parse"


def _listdir(path, suffix=""):
    if not path.exists():
        return ["<missing shared data>"]
    return sorted(n for n in os.listdir(path) if n.endswith(suffix))


@pytest.mark.parametrize("case", _listdir(COMPAT))
def test_backward_compatibility_policy_case(case):
    case_dir = require(COMPAT / case)
    expected = json.loads((case_dir / "expected-diagnostic-output.json").read_text())
    want = sorted(
        (v["id"], json.dumps(v["context"], sort_keys=True), v["signal_type"], v["signal_name"], v["level"])
        for v in (e["error"]["violation"] for e in expected))
    findings = check_compatibility(resolve_registry(str(case_dir / "base")),
                                   resolve_registry(str(case_dir / "current")))
    got = sorted((f.id, json.dumps(f.context, sort_keys=True), f.signal_type, f.signal_name, f.level)
                 for f in findings)
    assert got == want


def test_compatibility_messages_match_upstream():
    case_dir = require(COMPAT / "metrics")
    expected = {e["error"]["violation"]["message"]
                for e in json.loads((case_dir / "expected-diagnostic-output.json").read_text())}
    findings = check_compatibility(resolve_registry(str(case_dir / "base")),
                                   resolve_registry(str(case_dir / "current")))
    assert {f.message for f in findings} == expected


SAMPLE_FILES = _listdir(LIVE, ".json")


@pytest.mark.parametrize("sample_file", SAMPLE_FILES)
def test_live_check_samples_against_upstream(sample_file, upstream):
    registry = upstream("main")
    samples = read_samples(str(require(LIVE / sample_file)))
    assert samples, "sample file parsed to nothing"
    stats = LiveCheckStats(registry)
    findings = check_samples(LiveChecker(registry, stats), samples)
    report = stats.to_dict()
    assert report["total_entities"] >= len(samples)
    assert report["total_advisories"] == len(findings)
    for f in findings:
        assert f.level in ("violation", "improvement", "information") and f.id and f.message


def test_live_check_span_sample_findings(upstream):
    registry = upstream("main")
    findings = check_samples(LiveChecker(registry), read_samples(str(require(LIVE / "span.json"))))
    by_key = {(f.id, f.context.get("attribute_key") or f.context.get("event_name")) for f in findings}
    assert ("type_mismatch", "http.response.status_code") in by_key      # "foo" is not an int
    assert ("illegal_namespace", "aws.s3.bucket.name") in by_key         # aws.s3.bucket is an attribute
    assert ("missing_namespace", "TaskId") in by_key
    assert ("invalid_format", "TaskId") in by_key
    assert ("missing_event", "test_event") in by_key
    assert ("missing_attribute", "http.request.method") not in by_key


def test_live_check_model_metrics():
    model = require(LIVE / "model" / "metrics")
    registry = resolve_registry(str(model))
    findings = check_samples(LiveChecker(registry), read_samples(str(LIVE / "metrics.json")))
    ids = {(f.id, f.signal_name) for f in findings}
    undefined = [f.context["attribute_value"] for f in findings if f.id == "undefined_enum_variant"]
    assert undefined == ["inactive"]                                    # used/free are members
    assert ("missing_attribute", "system.memory.usage") in ids          # bare 'state'
    assert ("missing_metric", "system.memory.usage") not in ids
    assert ("missing_metric", "rpc.client.duration") in ids


def test_live_check_entity_association_model():
    registry = resolve_registry(str(require(LIVE / "model" / "entity_associations")))
    findings = check_samples(LiveChecker(registry), read_samples(str(LIVE / "entity_associations.json")))
    assert not any(f.id == "missing_event" for f in findings)  # thing.happened is defined


@pytest.mark.parametrize("name", _listdir(PARSE, ".yaml"))
def test_semconv_parse_valid_files(name):
    registry = resolve_registry_file(require(PARSE / name))
    assert registry.groups


def resolve_registry_file(path):
    """A single file may ref attributes defined in sibling files; load it
    alone and only require that parsing succeeds without errors."""
    loaded = load_registry(str(path))
    return loaded


@pytest.mark.parametrize("name", _listdir(PARSE / "invalid", ".yaml"))
def test_semconv_parse_invalid_files_are_reported(name):
    path = require(PARSE / "invalid" / name)
    try:
        loaded = load_registry(str(path))
        diagnostics = loaded.warnings
    except SemconvError as exc:
        diagnostics = exc.diagnostics
    assert diagnostics, f"{name} must be reported"
    for diag in diagnostics:
        assert diag.path == str(path) and diag.line


def test_missing_brief_is_an_error():
    path = require(PARSE / "invalid" / "invalid-semconv.yaml")
    with pytest.raises(SemconvError) as info:
        load_registry(str(path))
    assert "InvalidSemConvSpec" in info.value.kinds
    assert "brief" in str(info.value)
