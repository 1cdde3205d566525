"""The real upstream registries load completely: every group and attribute
the YAML files define is in the resolved registry, counted by a plain YAML
scan here (PyYAML over the files, no otelplug code), not by otelplug."""
from collections import Counter

import yaml

from otelplug.semconv.compat import check_compatibility
from otelplug.semconv.diff import diff_registries

from semconv_testdata import UPSTREAM, require


def v1_groups(registry):
    return [g for g in registry.groups if g.source_format == "v1"]


def scan(version: str):
    """What the registry's files define, read independently: v1 group
    (id, type) pairs, v1 attribute ids, and the attribute keys of v2
    (``file_format: definition/2``) files."""
    groups, v1_attributes, v2_attributes = [], set(), set()
    for path in sorted(require(UPSTREAM / version).rglob("*")):
        if path.suffix not in (".yaml", ".yml") or path.name == "manifest.yaml":
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            continue
        if str(doc.get("file_format", "")).startswith("definition/2"):
            v2_attributes |= {a["key"] for a in doc.get("attributes") or []}
            continue
        for group in doc.get("groups") or []:
            groups.append((group["id"], group["type"]))
            v1_attributes |= {a["id"] for a in group.get("attributes") or [] if "id" in a}
    return groups, v1_attributes, v2_attributes


def test_v1_43_loads_every_group_and_attribute(upstream):
    reg = upstream("v1.43.0")
    groups, attributes, v2 = scan("v1.43.0")
    assert not v2 and len(groups) > 900                       # a v1 registry, really scanned
    assert sorted((g.id, g.type) for g in reg.groups) == sorted(groups)
    assert set(reg.attributes) == attributes
    assert reg.manifest is not None and reg.manifest.schema_url.endswith("1.43.0")


def test_v1_42_loads(upstream):
    reg = upstream("v1.42.0")
    groups, attributes, _ = scan("v1.42.0")
    assert reg.manifest is None  # v1.42.0 has no manifest
    assert sorted((g.id, g.type) for g in reg.groups) == sorted(groups)
    assert set(reg.attributes) == attributes
    assert "http.request.method" in reg.attributes


def test_main_mixed_v1_v2_loads_every_v1_group_and_every_attribute(upstream):
    reg = upstream("main")
    groups, v1_attributes, v2_attributes = scan("main")
    assert v2_attributes and len(groups) > 800
    assert Counter((g.id, g.type) for g in v1_groups(reg)) == Counter(groups)
    v2_defined = {n for n, a in reg.attributes.items() if a.path and _is_v2_file(a.path)}
    assert v2_defined == v2_attributes
    assert set(reg.attributes) == v1_attributes | v2_attributes


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
