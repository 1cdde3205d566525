"""Reading live-check input and feeding it to a :class:`LiveChecker`.

Two input formats are accepted, detected from the content:

* Weaver's JSON sample format: a JSON array of one-key objects
  (``resource``, ``span``, ``metric``, ``log``, ``attribute``), attributes
  written as ``{"name", "value", "type"?}``;
* OTLP-JSON (``resourceSpans`` / ``resourceMetrics`` / ``resourceLogs``, in
  camelCase or snake_case), as one document or as JSON lines (one export
  request per line, what the Collector's file exporter writes).

Samples are normalised to small tuples so the checking code does not care
where they came from.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

from .livecheck import Finding, LiveChecker


class SampleError(Exception):
    """Bad live-check input (message carries the location)."""


@dataclass
class Sample:
    kind: str  # resource | span | metric | log | attribute
    name: str | None = None
    attributes: list[tuple[str, Any, str | None]] = field(default_factory=list)
    span_kind: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    instrument: str | None = None
    unit: str | None = None
    data_points: list[list[tuple[str, Any, str | None]]] = field(default_factory=list)
    body: Any = None


# ------------------------------------------------------------------ parsing

def parse_samples_text(text: str, source: str = "<input>") -> list[Sample]:
    text = text.strip()
    if not text:
        return []
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError as first_error:
        docs = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                err = first_error if number == 1 else exc
                lineno = err.lineno if number == 1 else number
                raise SampleError(f"{source}:{lineno}: invalid JSON: {err.msg}") from None
    samples: list[Sample] = []
    for doc in docs:
        samples.extend(_parse_document(doc, source))
    return samples


def read_samples(path: str) -> list[Sample]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise SampleError(f"{path}: cannot read input: {exc.strerror}") from None
    return parse_samples_text(text, path)


def _parse_document(doc: Any, source: str) -> Iterator[Sample]:
    if isinstance(doc, list):
        for index, item in enumerate(doc):
            yield _weaver_sample(item, f"{source}: sample #{index}")
        return
    if isinstance(doc, dict):
        keys = {_snake(k) for k in doc}
        if keys & {"resource_spans", "resource_metrics", "resource_logs"}:
            yield from _otlp(doc, source)
            return
        if len(doc) == 1 and next(iter(doc)) in _WEAVER_KINDS:
            yield _weaver_sample(doc, source)
            return
    raise SampleError(f"{source}: not a Weaver sample array nor an OTLP-JSON export request")


# ----------------------------------------------------------- weaver samples

_WEAVER_KINDS = ("resource", "span", "metric", "log", "attribute", "span_event")


def _weaver_attrs(raw: Any, where: str) -> list[tuple[str, Any, str | None]]:
    if raw is None:
        return []
    if isinstance(raw, dict):
        return [(str(k), v, None) for k, v in raw.items()]
    if not isinstance(raw, list):
        raise SampleError(f"{where}: 'attributes' must be a list")
    out = []
    for item in raw:
        if not isinstance(item, dict) or "name" not in item:
            raise SampleError(f"{where}: each attribute needs a 'name'")
        out.append((str(item["name"]), item.get("value"), item.get("type")))
    return out


def _weaver_sample(item: Any, where: str) -> Sample:
    if not isinstance(item, dict) or len(item) != 1:
        raise SampleError(f"{where}: a sample is an object with one key among {', '.join(_WEAVER_KINDS)}")
    kind, body = next(iter(item.items()))
    if kind not in _WEAVER_KINDS or not isinstance(body, dict):
        raise SampleError(f"{where}: unknown sample type {kind!r}")
    if kind == "resource":
        return Sample("resource", attributes=_weaver_attrs(body.get("attributes"), where))
    if kind == "attribute":
        if "name" not in body:
            raise SampleError(f"{where}: attribute sample needs a 'name'")
        return Sample("attribute", name=str(body["name"]),
                      attributes=[(str(body["name"]), body.get("value"), body.get("type"))])
    if kind == "span":
        return Sample(
            "span", name=str(body.get("name", "")), span_kind=_span_kind(body.get("kind")),
            attributes=_weaver_attrs(body.get("attributes"), where),
            events=[{"name": e.get("name", ""), "attributes": _weaver_attrs(e.get("attributes"), where)}
                    for e in body.get("span_events") or []],
            links=[{"attributes": _weaver_attrs(link.get("attributes"), where)} for link in body.get("span_links") or []],
        )
    if kind == "span_event":
        return Sample("log", name=str(body.get("name", "")), attributes=_weaver_attrs(body.get("attributes"), where))
    if kind == "metric":
        points = body.get("data_points") or []
        return Sample("metric", name=str(body.get("name", "")), instrument=body.get("instrument"),
                      unit=body.get("unit"),
                      data_points=[_weaver_attrs(p.get("attributes"), where) for p in points if isinstance(p, dict)])
    # log
    return Sample("log", name=body.get("event_name") or None, attributes=_weaver_attrs(body.get("attributes"), where),
                  body=body.get("body"))


# --------------------------------------------------------------------- otlp

def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def _get(obj: dict, key: str, default: Any = None) -> Any:
    """OTLP-JSON uses lowerCamelCase; protobuf-JSON dumps sometimes snake_case."""
    if key in obj:
        return obj[key]
    parts = key.split("_")
    camel = parts[0] + "".join(p.title() for p in parts[1:])
    return obj.get(camel, default)


def _any_value(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, dict) or not value:
        return None, None
    key, raw = next(iter(value.items()))
    key = _snake(key)
    if key == "string_value":
        return raw, "string"
    if key == "bool_value":
        return bool(raw), "boolean"
    if key == "int_value":
        return int(raw), "int"
    if key == "double_value":
        return float(raw), "double"
    if key == "array_value":
        items = [_any_value(v) for v in (raw or {}).get("values", [])]
        types = {t for _v, t in items}
        vtype = f"{types.pop()}[]" if len(types) == 1 and None not in types else None
        return [v for v, _t in items], vtype
    if key == "kvlist_value":
        return {kv.get("key"): _any_value(kv.get("value"))[0] for kv in (raw or {}).get("values", [])}, None
    return raw, None  # bytes


def _otlp_attrs(raw: Any) -> list[tuple[str, Any, str | None]]:
    out = []
    for kv in raw or []:
        value, vtype = _any_value(kv.get("value"))
        out.append((str(kv.get("key")), value, vtype))
    return out


_KIND_NUMBERS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _span_kind(kind: Any) -> str | None:
    if kind is None:
        return None
    if isinstance(kind, int):
        return _KIND_NUMBERS.get(kind)
    text = str(kind).lower().removeprefix("span_kind_")
    return None if text in ("unspecified", "") else text


def _otlp(doc: dict, source: str) -> Iterator[Sample]:
    for rs in _get(doc, "resource_spans", []) or []:
        yield Sample("resource", attributes=_otlp_attrs((_get(rs, "resource") or {}).get("attributes")))
        for ss in _get(rs, "scope_spans", []) or []:
            for span in ss.get("spans") or []:
                yield Sample(
                    "span", name=span.get("name", ""), span_kind=_span_kind(span.get("kind")),
                    attributes=_otlp_attrs(span.get("attributes")),
                    events=[{"name": e.get("name", ""), "attributes": _otlp_attrs(e.get("attributes"))}
                            for e in span.get("events") or []],
                    links=[{"attributes": _otlp_attrs(link.get("attributes"))} for link in span.get("links") or []])
    for rm in _get(doc, "resource_metrics", []) or []:
        yield Sample("resource", attributes=_otlp_attrs((_get(rm, "resource") or {}).get("attributes")))
        for sm in _get(rm, "scope_metrics", []) or []:
            for metric in sm.get("metrics") or []:
                yield _otlp_metric(metric)
    for rl in _get(doc, "resource_logs", []) or []:
        yield Sample("resource", attributes=_otlp_attrs((_get(rl, "resource") or {}).get("attributes")))
        for sl in _get(rl, "scope_logs", []) or []:
            for record in _get(sl, "log_records", []) or []:
                attrs = _otlp_attrs(record.get("attributes"))
                event_name = _get(record, "event_name") or next(
                    (v for n, v, _t in attrs if n == "event.name"), None)
                yield Sample("log", name=event_name, attributes=attrs, body=record.get("body"))


def _otlp_metric(metric: dict) -> Sample:
    instrument, data = None, {}
    for key, value in metric.items():
        key = _snake(key)
        if key == "sum":
            instrument = "counter" if _get(value, "is_monotonic") else "updowncounter"
        elif key == "gauge":
            instrument = "gauge"
        elif key in ("histogram", "exponential_histogram"):
            instrument = "histogram"
        elif key == "summary":
            instrument = "summary"
        else:
            continue
        data = value or {}
    points = [_otlp_attrs(p.get("attributes")) for p in _get(data, "data_points", []) or []]
    return Sample("metric", name=metric.get("name", ""), instrument=instrument, unit=metric.get("unit", ""),
                  data_points=points)


# -------------------------------------------------------------------- drive

def check_samples(checker: LiveChecker, samples: list[Sample]) -> list[Finding]:
    """Run every sample through the checker, in order."""
    findings: list[Finding] = []
    for sample in samples:
        if sample.kind == "resource":
            findings += checker.check_resource(sample.attributes)
        elif sample.kind == "attribute":
            findings += checker.check_attributes(sample.attributes)
        elif sample.kind == "span":
            findings += checker.check_span(sample.name or "", sample.span_kind, sample.attributes,
                                           sample.events, sample.links)
        elif sample.kind == "metric":
            findings += checker.check_metric(sample.name or "", sample.instrument, sample.unit, sample.data_points)
        elif sample.kind == "log":
            findings += checker.check_log(sample.name, sample.attributes, sample.body)
    return findings
