"""attributes: edits span and log record attributes with the Collector's
actions, optionally only for records matching ``include`` and not
``exclude`` (match_type strict or regexp over services, span names, span
kinds and attributes)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal


from otelplug import codec

from ..component import Factory, Kind
from otelplug.codec.recordset import RecordSet
from ..helpers.processor import Processor
from ..rewrite import rewrite
from ._actions import Action, CompiledActions

_KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
          "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}


@dataclass
class AttrMatch:
    """``key``: the attribute.

    ``value``: the value it must have; none: being present is enough.
    """
    key: str = ""
    value: Any = None


@dataclass
class MatchProperties:
    """``match_type``: compare names exactly, or as regexps.

    ``services``: service.name values that match.

    ``span_names``: span names that match.

    ``span_kinds``: span kinds that match (``SPAN_KIND_SERVER`` ...).

    ``attributes``: attributes the item must have (with these values).
    """
    match_type: Literal["strict", "regexp"] = "strict"
    services: list[str] = field(default_factory=list)
    span_names: list[str] = field(default_factory=list)
    span_kinds: list[str] = field(default_factory=list)
    attributes: list[AttrMatch] = field(default_factory=list)

    def validate(self):
        errs = []
        if not (self.services or self.span_names or self.span_kinds or self.attributes):
            errs.append("at least one of services, span_names, span_kinds or attributes must be given")
        for i, k in enumerate(self.span_kinds):
            if k not in _KINDS:
                errs.append((("span_kinds", str(i)), f"unknown span kind {k!r}"))
        if self.match_type == "regexp":
            for name in ("services", "span_names"):
                for i, p in enumerate(getattr(self, name)):
                    try:
                        re.compile(p)
                    except re.error as exc:
                        errs.append(((name, str(i)), f"invalid regexp: {exc}"))
        return errs


@dataclass
class AttributesConfig:
    """``actions``: applied in order to each span's or log record's attributes.

    ``include``: only items matching these properties are changed.

    ``exclude``: items matching these properties are left alone.
    """
    actions: list[Action] = field(default_factory=list)
    include: MatchProperties | None = None
    exclude: MatchProperties | None = None

    def validate(self):
        return [] if self.actions else [(("actions",), "at least one action is required")]


class _Matcher:
    def __init__(self, mp: MatchProperties):
        self.mp = mp
        rx = mp.match_type == "regexp"

        def comp(xs):
            if not xs:
                return None
            if rx:
                pats = [re.compile(x) for x in xs]
                return lambda v: v is not None and any(p.search(v) for p in pats)
            s = set(xs)
            return lambda v: v in s

        self.service = comp(mp.services)
        self.name = comp(mp.span_names)
        self.kinds = {_KINDS[k] for k in mp.span_kinds}

    def __call__(self, item, service) -> bool:
        if self.service and not self.service(service):
            return False
        if self.name and not self.name(getattr(item, "name", None)):
            return False
        if self.kinds and getattr(item, "kind", None) not in self.kinds:
            return False
        for am in self.mp.attributes:
            if am.key not in item.attributes:
                return False
            if am.value is not None and item.attributes[am.key] != am.value:
                return False
        return True


class AttributesProcessor(Processor):
    mutates = False   # builds new records, never edits the input buffer

    def __init__(self, settings, config: AttributesConfig, next_consumer):
        super().__init__(settings, config, next_consumer)
        self.actions = CompiledActions(config.actions)
        self.include = _Matcher(config.include) if config.include else None
        self.exclude = _Matcher(config.exclude) if config.exclude else None
        self._services: dict[int, str | None] = {}

    def _service(self, rs: RecordSet, key: int):
        if key not in self._services:
            payload = rs.defs.get(key)
            name = None
            if payload is not None:
                name = codec.decode_definition(payload).attributes.get("service.name")
            self._services[key] = name
        return self._services[key]

    def process(self, records: RecordSet):
        if records.signal == "metrics":
            return records   # metric point attributes: not supported yet, passed through
        filtered = self.include is not None or self.exclude is not None

        def edit(item):
            if filtered:
                svc = self._service(records, item.resource_key)
                if self.include is not None and not self.include(item, svc):
                    return
                if self.exclude is not None and self.exclude(item, svc):
                    return
            self.actions.apply(item.attributes)

        return rewrite(records, edit)


factory = Factory("attributes", Kind.PROCESSOR, AttributesConfig, AttributesProcessor,
                  signals=("traces", "logs"))
