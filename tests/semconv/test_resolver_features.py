"""Loader and resolver features on hand-made registries (v1, v2, manifests)."""
from __future__ import annotations

from otelplug.semconv import resolve_registry

ATTRS = """
groups:
  - id: registry.http
    type: attribute_group
    brief: HTTP attributes.
    attributes:
      - id: http.method
        type:
          members:
            - id: get
              value: GET
              stability: stable
            - id: post
              value: POST
              stability: experimental
        stability: stable
        brief: Method.
        note: Method note.
      - id: http.header
        type: template[string[]]
        stability: stable
        brief: Headers.
        examples: [["a"]]
      - id: http.codes
        type: int[]
        stability: experimental
        brief: Codes.
        examples: [[200, 404]]
      - id: http.legacy
        type: string
        stability: development
        deprecated: "Use http.method instead."
        brief: Old.
        examples: ["x"]
      - id: http.renamed
        type: string
        stability: development
        deprecated:
          reason: renamed
          renamed_to: http.method
        brief: Renamed.
        examples: ["x"]
      - id: http.flag
        type: boolean
        stability: stable
        brief: A flag.
        examples: [no]
        annotations:
          code_generation: {exclude: true}
"""


def test_types_stability_deprecated_annotations(resolve):
    reg = resolve({"a.yaml": ATTRS})
    attrs = reg.attributes
    assert attrs["http.method"].type["members"][1] == {"id": "post", "value": "POST", "stability": "development"}
    assert attrs["http.header"].is_template and attrs["http.header"].type == "template[string[]]"
    assert attrs["http.codes"].type == "int[]" and attrs["http.codes"].stability == "development"
    assert attrs["http.legacy"].deprecated == {"reason": "obsoleted", "note": "Use http.method instead."}
    assert attrs["http.renamed"].deprecated == {"reason": "renamed", "renamed_to": "http.method"}
    assert attrs["http.flag"].annotations == {"code_generation": {"exclude": True}}
    assert attrs["http.flag"].examples == ["no"]  # YAML 1.2: 'no' stays a string
    assert attrs["http.method"].requirement_level == "recommended"  # default


def test_ref_overrides_only_written_fields(resolve):
    reg = resolve({"a.yaml": ATTRS, "b.yaml": """
        groups:
          - id: span.http.client
            type: span
            span_kind: client
            stability: stable
            brief: Client span.
            attributes:
              - ref: http.method
                requirement_level: required
              - ref: http.codes
                requirement_level:
                  conditionally_required: If a response was received.
                brief: Overridden brief.
              - ref: http.flag
                requirement_level:
                  recommended: When known.
              - ref: http.header
                requirement_level: opt_in
    """})
    span = reg.by_id["span.http.client"]
    method = span.attribute("http.method")
    assert method.requirement_level == "required"
    assert method.note == "Method note." and method.brief == "Method." and method.stability == "stable"
    codes = span.attribute("http.codes")
    assert codes.requirement_level == {"conditionally_required": "If a response was received."}
    assert codes.brief == "Overridden brief." and codes.type == "int[]"
    assert span.attribute("http.flag").requirement_level == {"recommended": "When known."}
    assert span.attribute("http.header").requirement_level == "opt_in"
    # the registry definition itself is untouched
    assert reg.attributes["http.method"].requirement_level == "recommended"


def test_extends_chain_and_local_override(resolve):
    reg = resolve({"a.yaml": ATTRS, "b.yaml": """
        groups:
          - id: common
            type: attribute_group
            brief: Common.
            attributes:
              - ref: http.method
                requirement_level: required
                examples: ["GET"]
          - id: middle
            type: attribute_group
            brief: Middle.
            extends: common
            attributes:
              - ref: http.flag
          - id: metric.http.duration
            type: metric
            metric_name: http.duration
            stability: stable
            brief: Duration.
            instrument: histogram
            unit: s
            extends: middle
            attributes:
              - ref: http.method
                note: Overridden note.
    """})
    metric = reg.by_id["metric.http.duration"]
    assert [a.name for a in metric.attributes] == ["http.flag", "http.method"]
    method = metric.attribute("http.method")
    # requirement_level and examples come from the grand-parent, note is local
    assert (method.requirement_level, method.examples, method.note) == ("required", ["GET"], "Overridden note.")
    assert metric.get("metric_name") == "http.duration" and metric.get("unit") == "s"


def test_legacy_prefix_and_prefixed_ref(resolve):
    reg = resolve({"a.yaml": """
        groups:
          - id: registry.geo
            type: attribute_group
            prefix: geo
            brief: Geo.
            attributes:
              - id: lat
                type: double
                stability: stable
                brief: Latitude.
          - id: registry.client
            type: attribute_group
            prefix: client
            brief: Client.
            attributes:
              - ref: geo.lat
                prefix: true
                brief: Client latitude.
          - id: usage
            type: attribute_group
            brief: Usage.
            attributes:
              - ref: client.geo.lat
    """})
    assert reg.attributes["geo.lat"].type == "double"
    assert reg.attributes["client.geo.lat"].brief == "Client latitude."
    assert reg.by_id["usage"].attribute("client.geo.lat").brief == "Client latitude."
    assert any(w.kind == "InvalidGroupUsesPrefix" for w in reg.warnings)


def test_events_entities_scope_and_resource_alias(resolve):
    reg = resolve({"a.yaml": ATTRS + """
  - id: event.http.thing
    type: event
    name: http.thing
    stability: development
    brief: Thing happened.
    body:
      id: body
      type: map
      stability: experimental
      requirement_level: optional
  - id: resource.http.server
    type: resource
    name: http.server
    stability: development
    brief: Server entity.
    attributes:
      - ref: http.flag
        role: identifying
  - id: scope.http
    type: scope
    brief: Scope.
    attributes:
      - ref: http.flag
"""})
    assert reg.events["http.thing"].get("body")["stability"] == "development"
    entity = reg.entities["http.server"]
    assert entity.type == "entity" and entity.attributes[0].role == "identifying"
    assert reg.by_id["scope.http"].type == "scope"


V2 = """
file_format: definition/2
attributes:
  - key: shop.item
    type: string
    brief: Item.
    stability: stable
    examples: ["apple"]
  - key: shop.count
    type: int
    brief: Count.
    stability: stable
attribute_groups:
  - id: shop.common
    visibility: internal
    attributes:
      - ref: shop.item
        requirement_level: required
  - id: shop.public
    visibility: public
    brief: Public group.
    stability: stable
    attributes:
      - ref: shop.count
spans:
  - type: shop.checkout
    kind: server
    brief: Checkout.
    stability: stable
    name:
      note: "checkout {shop.item}"
    attributes:
      - ref_group: shop.common
metrics:
  - name: shop.sales
    brief: Sales.
    stability: development
    instrument: counter
    unit: "{sale}"
    annotations: {a: {x: 1, y: 2}}
    attributes:
      - ref_group: shop.common
events:
  - name: shop.opened
    brief: Opened.
    stability: development
entities:
  - type: shop
    brief: A shop.
    stability: development
    identity:
      - ref: shop.item
    description:
      - ref: shop.count
metric_refinements:
  - id: metric.shop.sales.online
    ref: shop.sales
    brief: Online sales.
    annotations: {a: {y: 3}}
    attributes:
      - ref: shop.count
        requirement_level: opt_in
span_refinements:
  - id: span.shop.checkout.fast
    ref: shop.checkout
    brief: Fast checkout.
imports:
  metrics: ["other.*"]
"""


def test_v2_definitions_and_refinements(resolve):
    reg = resolve({"shop.yaml": V2})
    ids = {g.id for g in reg.groups}
    assert {"span.shop.checkout", "metric.shop.sales", "event.shop.opened", "entity.shop", "shop.public",
            "metric.shop.sales.online", "span.shop.checkout.fast"} <= ids
    assert "shop.common" not in ids  # internal group
    registry_group = next(g for g in reg.groups if g.id.startswith("registry.") and g.id.endswith(".shop"))
    assert {a.name for a in registry_group.attributes} == {"shop.item", "shop.count"}
    span = reg.spans["shop.checkout"]
    assert span.get("span_kind") == "server" and span.attribute("shop.item").requirement_level == "required"
    online = reg.by_id["metric.shop.sales.online"]
    assert online.get("metric_name") == "shop.sales" and online.get("unit") == "{sale}"
    assert online.get("annotations") == {"a": {"x": 1, "y": 3}}  # deep merge
    assert {a.name: a.requirement_level for a in online.attributes} == {"shop.item": "required",
                                                                          "shop.count": "opt_in"}
    assert reg.metrics["shop.sales"] is reg.by_id["metric.shop.sales"]  # refinement not in lookup
    assert reg.by_id["span.shop.checkout.fast"].get("span_kind") == "server"
    roles = {a.name: a.role for a in reg.entities["shop"].attributes}
    assert roles == {"shop.item": "identifying", "shop.count": "descriptive"}


def test_mixed_v1_and_v2_files(resolve):
    reg = resolve({"shop.yaml": V2, "legacy.yaml": """
        groups:
          - id: metric.shop.legacy
            type: metric
            metric_name: shop.legacy
            stability: development
            brief: Uses a v2 attribute.
            instrument: gauge
            unit: "1"
            attributes:
              - ref: shop.item
    """})
    assert reg.metrics["shop.legacy"].attribute("shop.item").examples == ["apple"]


def test_manifest_dependency_and_imports(make_registry, tmp_path):
    make_registry({"manifest.yaml": "name: base\nschema_url: https://example.com/base/1.0.0\n",
                   "base.yaml": """
        groups:
          - id: registry.base
            type: attribute_group
            brief: Base attributes.
            attributes:
              - id: base.name
                type: string
                stability: stable
                brief: Name.
                examples: ["n"]
          - id: metric.base.imported
            type: metric
            metric_name: base.imported
            stability: stable
            brief: Imported.
            instrument: counter
            unit: "1"
            attributes:
              - ref: base.name
          - id: metric.base.hidden
            type: metric
            metric_name: base.hidden
            stability: stable
            brief: Not imported.
            instrument: counter
            unit: "1"
    """}, name="base")
    app = make_registry({"registry_manifest.yaml": "name: app\ndependencies:\n  - name: base\n    registry_path: ../base\n",
                         "app.yaml": """
        groups:
          - id: group.app
            type: attribute_group
            brief: App group.
            attributes:
              - ref: base.name
                requirement_level: required
        imports:
          metrics:
            - base.imp*
    """}, name="app")
    reg = resolve_registry(app)
    assert reg.manifest.name == "app"
    assert set(reg.metrics) == {"base.imported"}
    assert reg.metrics["base.imported"].local is False
    assert reg.by_id["group.app"].attribute("base.name").requirement_level == "required"
    assert "base.name" in reg.attributes and "base.name" not in reg.local_attribute_names


def test_resolved_output_shape(resolve):
    reg = resolve({"a.yaml": ATTRS})
    out = reg.to_dict()
    (group,) = out["groups"]
    assert group["id"] == "registry.http" and group["provenance"]["line"] == 2
    names = [a["name"] for a in group["attributes"]]
    assert names == sorted(names)
    method = next(a for a in group["attributes"] if a["name"] == "http.method")
    assert set(method) >= {"name", "type", "brief", "requirement_level", "stability", "note"}
