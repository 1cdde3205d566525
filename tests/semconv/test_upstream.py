"""The real upstream registries load, with the measured counts."""
from collections import Counter

from otelplug.semconv.compat import check_compatibility
from otelplug.semconv.diff import diff_registries


def v1_groups(registry):
    return [g for g in registry.groups if g.source_format == "v1"]


def test_v1_43_counts(upstream):
    reg = upstream("v1.43.0")
    assert len(reg.groups) == 942
    assert len(reg.attributes) == 933
    assert reg.manifest is not None and reg.manifest.schema_url.endswith("1.43.0")


def test_v1_42_loads(upstream):
    reg = upstream("v1.42.0")
    assert reg.manifest is None  # v1.42.0 has no manifest
    assert len(reg.groups) == 941
    assert "http.request.method" in reg.attributes


def test_main_counts_mixed_v1_v2(upstream):
    reg = upstream("main")
    groups = v1_groups(reg)
    assert len(groups) == 868
    assert Counter(g.type for g in groups) == {
        "attribute_group": 205, "metric": 503, "span": 66, "event": 30, "entity": 64}
    v2_defined = {n for n, a in reg.attributes.items() if a.path and _is_v2_file(a.path)}
    assert len(v2_defined) == 12
    assert len(reg.attributes) - len(v2_defined) == 931


def _is_v2_file(path):
    with open(path, encoding="utf-8") as handle:
        return "file_format: definition/2" in handle.read()


def test_main_v2_refinements_resolve(upstream):
    reg = upstream("main")
    kafka = reg.by_id["span.messaging.kafka.send.producer"]
    assert kafka.refines == ("span", "messaging.send.producer")
    assert kafka.get("span_kind") == "producer"  # inherited from the refined span
    names = {a.name for a in kafka.attributes}
    assert {"messaging.system", "messaging.kafka.cluster.id", "messaging.kafka.message.key"} <= names
    # internal v2 attribute groups feed ref_group but are not output
    assert "messaging.kafka.attributes.common" not in reg.by_id
    # a v1 group can ref an attribute defined in a v2 file and vice versa
    assert reg.attributes["session.id"].type == "string"


def test_v1_42_to_v1_43_compatibility(upstream):
    findings = check_compatibility(upstream("v1.42.0"), upstream("v1.43.0"))
    assert [(f.id, f.signal_type, f.signal_name) for f in findings] == [
        ("compatibility_entity_missing", "entity", "vcs.repo")]


def test_v1_42_to_v1_43_diff(upstream):
    diff = diff_registries(upstream("v1.42.0"), upstream("v1.43.0"))
    assert diff["attributes"]["added"] == [{"name": "azure.resource_group.name"}]
    assert diff["attributes"]["removed"] == []
    assert diff["entities"]["added"] == [{"name": "vcs.repository"}]
    assert diff["entities"]["removed"] == [{"name": "vcs.repo"}]
    assert not any(diff["metrics"].values())


def test_same_registry_has_no_findings(upstream):
    reg = upstream("v1.43.0")
    assert check_compatibility(reg, reg) == []
    assert not any(v for cats in diff_registries(reg, reg).values() for v in cats.values())
