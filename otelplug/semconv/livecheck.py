"""Live-check: compare telemetry samples with a resolved registry.

The registry is compiled once into dict lookup tables (:class:`LiveChecker`);
each ``check_*`` call then costs a few dict lookups per attribute, so the
same object can later run inside a sidecar processor for every span, metric
or log record.

Finding ids and default levels are Weaver live-check's:

============================================  ===========
missing_attribute, type_mismatch, deprecated  violation
missing_metric, missing_event                 violation
unit_mismatch, unexpected_instrument          violation
invalid_format, illegal_namespace             violation
required_attribute_not_present                violation
recommended_attribute_not_present             improvement
missing_namespace                             improvement
not_stable, undefined_enum_variant            information
template_attribute, extends_namespace         information
opt_in_attribute_not_present                  information
conditionally_required_attribute_not_present  information
============================================  ===========

Beyond Weaver, spans are matched to their span definition, and span events
to event definitions (Weaver only looks at span attributes one by one):

* **Span matching** is by exact span name, first against the definition's
  ``name`` (v2 span ``type``), then its group id, then the group id without
  its ``span.`` prefix.  Span names are free-form, so an unmatched span is
  not a finding.  When several definitions share a name, the one whose
  ``span_kind`` equals the span's kind wins.  A matched span is checked for
  its definition's attribute requirement levels and for its kind
  (``unexpected_span_kind``, violation, an otelplug finding id).
* **Span events** are matched by event name; an unknown name is
  ``missing_event``, a known one is checked for its attribute requirements.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .constraints import Constraints, attribute_constraints, check_value, declared, predicate, short_field
from .model import Attribute, Group, is_template_type, requirement_level_name, template_inner
from .registry import ResolvedRegistry

VIOLATION, IMPROVEMENT, INFORMATION = "violation", "improvement", "information"
LEVEL_RANK = {INFORMATION: 0, IMPROVEMENT: 1, VIOLATION: 2}
SUPPORTED_INSTRUMENTS = frozenset({"counter", "updowncounter", "gauge", "histogram"})
NAME_FORMAT = re.compile(r"^[a-z][a-z0-9]*([._][a-z0-9]+)*$")

_MISSING_BY_LEVEL = {
    "required": ("required_attribute_not_present", VIOLATION, "Required"),
    "recommended": ("recommended_attribute_not_present", IMPROVEMENT, "Recommended"),
    "opt_in": ("opt_in_attribute_not_present", INFORMATION, "Opt-in"),
    "conditionally_required": ("conditionally_required_attribute_not_present", INFORMATION,
                               "Conditionally required"),
}


@dataclass
class Finding:
    id: str
    level: str
    message: str
    context: dict[str, Any] = field(default_factory=dict)
    signal_type: str | None = None
    signal_name: str | None = None
    sample_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "level": self.level, "message": self.message, "context": self.context,
                "signal_type": self.signal_type, "signal_name": self.signal_name,
                "sample_type": self.sample_type}


#: the attributes otelplug's semconv processor adds when it annotates an item
#: (defined in semconv/semconv_processor.yaml): known to every check, so
#: checking annotated telemetry against another registry (upstream's) does
#: not flag otelplug's own annotation as unknown
SIDECAR_ATTRIBUTES = frozenset({"otelplug.semconv.findings", "otelplug.semconv.level"})


#: :meth:`LiveChecker.value_class` of a value that meets its constraints
VALID = ("<valid>",)


def deprecation_text(deprecation: Mapping[str, Any]) -> str:
    """``renamed to 'x'`` / ``obsoleted: <note>``: what to do instead."""
    reason = deprecation.get("reason") or "uncategorized"
    if reason == "renamed" and deprecation.get("renamed_to"):
        text = f"renamed to '{deprecation['renamed_to']}'"
    else:
        text = f"reason: {reason}"
    note = str(deprecation.get("note") or "").strip().rstrip(".")
    return f"{text} ({note})" if note else text


# ---------------------------------------------------------------- typing

def infer_type(value: Any) -> str | None:
    """Semconv type of a sample value (None when it has no semconv type)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        inner = {infer_type(v) for v in value}
        if not inner:
            return None  # empty array: compatible with any array type
        if inner <= {"int", "double"} and "double" in inner:
            return "double[]"
        if len(inner) == 1 and None not in inner and not next(iter(inner)).endswith("[]"):
            return next(iter(inner)) + "[]"
        return "any"
    return None


def types_compatible(sample: str | None, expected: str) -> bool:
    if sample is None or expected == "any" or sample == expected:
        return True
    if expected == "double" and sample == "int":
        return True
    if expected == "double[]" and sample == "int[]":
        return True
    return False


# ---------------------------------------------------------------- checker

class LiveChecker:
    """A registry compiled for per-sample checks.

    ``stats`` (a :class:`~otelplug.semconv.stats.LiveCheckStats`) is
    optional: a processor that only wants findings leaves it out.
    """

    def __init__(self, registry: ResolvedRegistry, stats: Any = None):
        self.registry = registry
        self.stats = stats
        self.attributes: dict[str, Attribute] = dict(registry.attributes)
        # longest template first so the most specific one matches
        self.templates: list[tuple[str, Attribute]] = sorted(
            ((n, a) for n, a in self.attributes.items() if a.is_template),
            key=lambda item: -len(item[0]))
        self.namespaces: set[str] = set()
        for name in self.attributes:
            parts = name.split(".")
            for i in range(1, len(parts)):
                self.namespaces.add(".".join(parts[:i]))
        self.metrics: dict[str, Group] = registry.metrics
        self.events: dict[str, Group] = registry.events
        self.entities: dict[str, Group] = registry.entities
        #: names of enum attributes: the only ones whose *value* (not just
        #: its type) changes the findings, which is what a cache keyed by
        #: attribute shape needs to know
        self.enum_attributes: frozenset[str] = frozenset(n for n, a in self.attributes.items() if a.is_enum)
        self._enum_names = self.enum_attributes
        #: value constraints (otelplug's registry extension, .constraints):
        #: per registry attribute, and per signal where a ``ref`` overrides them
        self.constraints: dict[str, Constraints] = {}
        for n, a in self.attributes.items():
            c = attribute_constraints(a)
            if c is not None:
                self.constraints[n] = c
        self.signal_constraints: dict[tuple[str, str], dict[str, Constraints | None]] = {}
        for group in registry.groups:
            for a in group.attributes:
                if declared(a.annotations) != declared(getattr(self.attributes.get(a.name), "annotations", None)):
                    key = ("span" if group.type == "span" else "log", group.signal_name)
                    self.signal_constraints.setdefault(key, {})[a.name] = attribute_constraints(a)
        # a constrained attribute's value changes the findings just as an
        # enum's does (the sidecar's shape cache keys on these values,
        # through value_class)
        self._all_constraints: dict[str, list[Constraints]] = {n: [c] for n, c in self.constraints.items()}
        for overrides in self.signal_constraints.values():
            for n, c in overrides.items():
                self._all_constraints.setdefault(n, []).extend([c] if c is not None else [])
        self.enum_attributes = self.enum_attributes | frozenset(self._all_constraints)
        self._predicates = {n: [predicate(c) for c in cs] for n, cs in self._all_constraints.items()
                            if cs and n not in self._enum_names}
        self.span_index: dict[str, list[Group]] = {}
        for group in registry.of_type("span"):
            for key in dict.fromkeys((group.fields.get("name"), group.id, group.span_type)):
                if key:
                    self.span_index.setdefault(key, []).append(group)

    def value_class(self, name: str, value: Any) -> Any:
        """What the findings depend on in the value of an attribute whose
        value counts (:attr:`enum_attributes`): an enum's value itself; for a
        constrained attribute, :data:`VALID` when it meets every constraint
        declared for it (the registry's and the signals'), else the value
        (whose finding message quotes it).  The sidecar's shape cache keys on
        this, so continuous valid values share one cache entry."""
        checks = self._predicates.get(name)
        if checks is None:
            return value
        for meets in checks:
            if not meets(value):
                return value
        return VALID

    # ------------------------------------------------------------ attributes
    def lookup_attribute(self, name: str) -> tuple[Attribute | None, bool]:
        """(definition, is_template_match)."""
        attr = self.attributes.get(name)
        if attr is not None:
            return attr, False
        for prefix, template in self.templates:
            if name.startswith(prefix + ".") or (name.startswith(prefix) and len(name) > len(prefix)):
                return template, True
        return None, False

    def check_attribute(self, name: str, value: Any = None, *, value_type: str | None = None,
                        signal_type: str | None = None, signal_name: str | None = None) -> list[Finding]:
        """Findings for one attribute (any signal)."""
        out: list[Finding] = []

        def add(fid: str, level: str, message: str, **context: Any) -> None:
            out.append(Finding(fid, level, message, {"attribute_key": name, **context}, signal_type,
                               signal_name, "attribute"))

        attr, is_template = self.lookup_attribute(name)
        if attr is None and name in SIDECAR_ATTRIBUTES:
            return out  # otelplug's own annotation: known, whatever registry is checked
        if self.stats is not None:
            self.stats.seen_attribute(name, attr.name if attr is not None else None)
        if attr is None:
            add("missing_attribute", VIOLATION, f"Attribute '{name}' does not exist in the registry.")
            self._name_policy(name, add)
            return out
        if is_template:
            add("template_attribute", INFORMATION,
                f"Attribute '{name}' is a template instance of '{attr.name}'.", template=attr.name)
        if attr.deprecated is not None:
            deprecation = attr.deprecated if isinstance(attr.deprecated, dict) else {}
            context = {"deprecation_reason": deprecation.get("reason"),
                       "deprecation_note": deprecation.get("note")}
            if deprecation.get("renamed_to"):
                context["renamed_to"] = deprecation["renamed_to"]
            add("deprecated", VIOLATION, f"Attribute '{name}' is deprecated; {deprecation_text(deprecation)}.",
                **context)
        elif attr.stability != "stable":
            # a deprecated attribute is reported once, as deprecated: its
            # stability says nothing more a person can act on
            add("not_stable", INFORMATION, f"Attribute '{name}' is not stable; stability = {attr.stability}.",
                stability=attr.stability)
        sample_type = value_type or infer_type(value)
        if attr.is_enum:
            if value is not None and sample_type not in ("string", "int", None):
                add("type_mismatch", VIOLATION,
                    f"Enum attribute '{name}' has type '{sample_type}'. Enum value type should be 'string' or 'int'.",
                    attribute_type=sample_type)
            elif value is not None and value not in attr.enum_values():
                add("undefined_enum_variant", INFORMATION,
                    f"Enum attribute '{name}' has value '{value}' which is not documented.",
                    attribute_value=value)
            return out
        expected = template_inner(attr.type) if is_template_type(attr.type) else attr.type
        if value is not None or value_type is not None:
            if not types_compatible(sample_type, expected):
                add("type_mismatch", VIOLATION,
                    f"Attribute '{name}' has type '{sample_type}'. Type should be '{expected}'.",
                    attribute_type=sample_type, expected=expected)
            elif value is not None:
                self._check_constraints(name, value, signal_type, signal_name, add)
        return out

    def _check_constraints(self, name: str, value: Any, signal_type: str | None, signal_name: str | None,
                           add) -> None:
        overrides = self.signal_constraints.get((signal_type or "", signal_name or ""))
        c = overrides[name] if overrides and name in overrides else self.constraints.get(name)
        if c is None:
            return
        found = check_value(c, value)
        if found is not None:
            add(found.finding_id, VIOLATION, found.message(signal_name, short_field(name, signal_name)),
                attribute_value=value, constraints=c.to_dict())

    def _name_policy(self, name: str, add) -> None:
        """Weaver's default otel policy for names that are not in the registry."""
        if "." not in name:
            add("missing_namespace", IMPROVEMENT, f"Attribute name '{name}' has no namespace.")
        if not NAME_FORMAT.match(name):
            add("invalid_format", VIOLATION, f"Attribute name '{name}' does not match the naming format.")
        parts = name.split(".")
        for i in range(len(parts) - 1, 0, -1):
            namespace = ".".join(parts[:i])
            if namespace in self.attributes:
                add("illegal_namespace", VIOLATION,
                    f"Attribute name '{name}' uses '{namespace}' as namespace, but it is an attribute.",
                    namespace=namespace)
                return
        if len(parts) > 1:
            namespace = ".".join(parts[:-1])
            if namespace in self.namespaces:
                add("extends_namespace", INFORMATION,
                    f"Attribute name '{name}' extends the existing namespace '{namespace}'.", namespace=namespace)

    def check_attributes(self, attributes: Mapping[str, Any] | Iterable, *, signal_type: str | None = None,
                         signal_name: str | None = None) -> list[Finding]:
        out: list[Finding] = []
        for name, value, vtype in _iter_attrs(attributes):
            findings = self.check_attribute(name, value, value_type=vtype, signal_type=signal_type,
                                            signal_name=signal_name)
            self._record("attribute", findings)
            out += findings
        return out

    def check_requirements(self, group: Group, present: Iterable[str], *, signal_type: str,
                           signal_name: str | None, sample_type: str) -> list[Finding]:
        """Attributes of ``group`` missing from ``present``, by requirement level."""
        names = set(present)
        out = []
        for attr in group.attributes:
            if attr.is_template:
                found = any(n.startswith(attr.name) for n in names)
            else:
                found = attr.name in names
            if found:
                continue
            level = requirement_level_name(attr.requirement_level)
            fid, severity, label = _MISSING_BY_LEVEL.get(level, _MISSING_BY_LEVEL["recommended"])
            out.append(Finding(fid, severity, f"{label} attribute '{attr.name}' is not present.",
                               {"attribute_key": attr.name}, signal_type, signal_name, sample_type))
        return out

    def _signal_status(self, group: Group, kind: str, name: str, sample_type: str) -> list[Finding]:
        out = []
        if group.deprecated is not None:
            deprecation = group.deprecated if isinstance(group.deprecated, dict) else {}
            context = {"deprecation_reason": deprecation.get("reason")}
            if deprecation.get("renamed_to"):
                context["renamed_to"] = deprecation["renamed_to"]
            out.append(Finding("deprecated", VIOLATION,
                               f"{kind.capitalize()} '{name}' is deprecated; {deprecation_text(deprecation)}.",
                               context, kind, name, sample_type))
        elif group.stability not in (None, "stable"):
            out.append(Finding("not_stable", INFORMATION,
                               f"{kind.capitalize()} '{name}' is not stable; stability = {group.stability}.",
                               {"stability": group.stability}, kind, name, sample_type))
        return out

    # --------------------------------------------------------------- signals
    def check_resource(self, attributes: Mapping[str, Any] | Iterable) -> list[Finding]:
        findings = self.check_attributes(attributes, signal_type="resource")
        self._record("resource", [])
        return findings

    def match_span(self, name: str, kind: str | None = None) -> Group | None:
        candidates = self.span_index.get(name)
        if not candidates:
            return None
        for group in candidates:
            if kind and group.fields.get("span_kind") == kind:
                return group
        return candidates[0]

    def check_span(self, name: str, kind: str | None, attributes: Mapping[str, Any] | Iterable,
                   events: Iterable[Mapping[str, Any]] = (), links: Iterable[Mapping[str, Any]] = ()) -> list[Finding]:
        """Findings for a span, its attributes, events and links.

        ``events``: mappings with ``name`` and ``attributes``; ``links``:
        mappings with ``attributes``.
        """
        attr_list = list(_iter_attrs(attributes))
        out = self.check_attributes(attr_list, signal_type="span", signal_name=name)
        own: list[Finding] = []
        definition = self.match_span(name, kind)
        if self.stats is not None:
            self.stats.seen_span(name, definition.span_type if definition else None)
        if definition is not None:
            own += self._signal_status(definition, "span", name, "span")
            expected_kind = definition.fields.get("span_kind")
            if kind and expected_kind and kind != expected_kind:
                own.append(Finding("unexpected_span_kind", VIOLATION,
                                   f"Span '{name}' has kind '{kind}'; its definition '{definition.id}' "
                                   f"says '{expected_kind}'.",
                                   {"span_kind": kind, "expected": expected_kind, "definition": definition.id},
                                   "span", name, "span"))
            own += self.check_requirements(definition, (n for n, _v, _t in attr_list), signal_type="span",
                                           signal_name=name, sample_type="span")
        self._record("span", own)
        out += own
        for event in events:
            out += self.check_span_event(event.get("name", ""), event.get("attributes") or {}, span_name=name)
        for link in links:
            out += self.check_attributes(link.get("attributes") or {}, signal_type="span", signal_name=name)
            self._record("span_link", [])
        return out

    def check_span_event(self, name: str, attributes: Mapping[str, Any] | Iterable, *,
                         span_name: str | None = None) -> list[Finding]:
        attr_list = list(_iter_attrs(attributes))
        out = self.check_attributes(attr_list, signal_type="span", signal_name=span_name)
        own = self._event_checks(name, attr_list, signal_type="span", signal_name=span_name,
                                 sample_type="span_event")
        self._record("span_event", own)
        return out + own

    def _event_checks(self, event_name: str, attr_list: list, *, signal_type: str, signal_name: str | None,
                      sample_type: str) -> list[Finding]:
        definition = self.events.get(event_name)
        if self.stats is not None:
            self.stats.seen_event(event_name, definition is not None)
        if definition is None:
            return [Finding("missing_event", VIOLATION, f"Event '{event_name}' does not exist in the registry.",
                            {"event_name": event_name}, signal_type, signal_name, sample_type)]
        out = self._signal_status(definition, "event", event_name, sample_type)
        for f in out:
            f.signal_type, f.signal_name = signal_type, signal_name
        out += self.check_requirements(definition, (n for n, _v, _t in attr_list), signal_type=signal_type,
                                       signal_name=signal_name, sample_type=sample_type)
        return out

    def check_log(self, event_name: str | None, attributes: Mapping[str, Any] | Iterable,
                  body: Any = None) -> list[Finding]:
        """A log record; with an event name it is checked as that event."""
        attr_list = list(_iter_attrs(attributes))
        out = self.check_attributes(attr_list, signal_type="log", signal_name=event_name or None)
        own: list[Finding] = []
        if event_name:
            own = self._event_checks(event_name, attr_list, signal_type="log", signal_name=event_name,
                                     sample_type="log")
        self._record("log", own)
        return out + own

    def check_metric(self, name: str, instrument: str | None, unit: str | None,
                     data_points: Iterable[Mapping[str, Any] | Iterable] = ()) -> list[Finding]:
        """A metric and its data points (each given as its attributes)."""
        own: list[Finding] = []
        definition = self.metrics.get(name)
        if self.stats is not None:
            self.stats.seen_metric(name, definition is not None)

        def add(fid: str, level: str, message: str, **context: Any) -> None:
            own.append(Finding(fid, level, message, context, "metric", name, "metric"))

        if definition is None:
            add("missing_metric", VIOLATION, f"Metric '{name}' does not exist in the registry.", metric_name=name)
            if not NAME_FORMAT.match(name):
                add("invalid_format", VIOLATION, f"Metric name '{name}' does not match the naming format.",
                    metric_name=name)
        else:
            own += self._signal_status(definition, "metric", name, "metric")
            expected_instrument = definition.fields.get("instrument")
            if instrument is not None and instrument not in SUPPORTED_INSTRUMENTS:
                add("unexpected_instrument", VIOLATION, f"Instrument '{instrument}' is not supported",
                    instrument=instrument)
            elif instrument and expected_instrument and instrument != expected_instrument:
                add("unexpected_instrument", VIOLATION,
                    f"Instrument should be '{expected_instrument}', but found '{instrument}'.",
                    instrument=instrument, expected=expected_instrument)
            expected_unit = definition.fields.get("unit")
            if expected_unit is not None and unit is not None and unit != expected_unit:
                add("unit_mismatch", VIOLATION, f"Unit should be '{expected_unit}', but found '{unit}'.",
                    unit=unit, expected=expected_unit)
        self._record("metric", own)
        out = list(own)
        for point in data_points:
            out += self.check_data_point(name, point)
        return out

    def check_data_point(self, metric_name: str, attributes: Mapping[str, Any] | Iterable) -> list[Finding]:
        """One data point of metric ``metric_name``: its attributes and the
        metric definition's attribute requirements.  ``check_metric`` calls
        it for each point; a batch checker that caches per point shape calls
        it directly (after ``check_metric(name, instrument, unit)`` once per
        metric)."""
        attr_list = list(_iter_attrs(attributes))
        out = self.check_attributes(attr_list, signal_type="metric", signal_name=metric_name)
        point_findings: list[Finding] = []
        definition = self.metrics.get(metric_name)
        if definition is not None:
            point_findings = self.check_requirements(definition, (n for n, _v, _t in attr_list),
                                                     signal_type="metric", signal_name=metric_name,
                                                     sample_type="data_point")
        self._record("data_point", point_findings)
        return out + point_findings

    # ------------------------------------------------------------------ misc
    def _record(self, sample_type: str, findings: list[Finding]) -> None:
        if self.stats is not None:
            self.stats.record(sample_type, findings)


def _iter_attrs(attributes: Mapping[str, Any] | Iterable) -> Iterable[tuple[str, Any, str | None]]:
    """Accept ``{name: value}`` or Weaver-style ``[{name, value, type}]``
    (or already-normalised triples)."""
    if isinstance(attributes, Mapping):
        for name, value in attributes.items():
            yield str(name), value, None
        return
    for item in attributes:
        if isinstance(item, tuple):
            yield item
        elif isinstance(item, Mapping):
            yield str(item.get("name")), item.get("value"), item.get("type")


def highest_level(findings: Iterable[Finding]) -> str | None:
    best = None
    for f in findings:
        if best is None or LEVEL_RANK.get(f.level, -1) > LEVEL_RANK[best]:
            best = f.level
    return best
