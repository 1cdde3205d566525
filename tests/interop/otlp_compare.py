"""Compare OTLP data item by item, independently of how it was batched.

Every span, log record and metric data point is flattened to one plain
dict holding its own fields plus its resource, scope (and for points the
metric's name, unit, description, type, temporality, monotonicity), with
attribute lists sorted by key (OTLP attributes are a map: order carries no
meaning). Two sides are equal when the multisets of these dicts are.
"""
from __future__ import annotations

import json
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.otlp_sink import _hex_ids_to_base64

REQUESTS = {"traces": ExportTraceServiceRequest, "logs": ExportLogsServiceRequest,
            "metrics": ExportMetricsServiceRequest}
SIGNALS = ("traces", "logs", "metrics")


def _sorted_attributes(obj):
    if isinstance(obj, dict):
        out = {k: _sorted_attributes(v) for k, v in obj.items()}
        for key in ("attributes",):
            if isinstance(out.get(key), list):
                out[key] = sorted(out[key], key=lambda kv: kv.get("key", ""))
        return out
    if isinstance(obj, list):
        return [_sorted_attributes(v) for v in obj]
    return obj


def _plain(msg) -> dict:
    return _sorted_attributes(json_format.MessageToDict(msg, preserving_proto_field_name=True))


def flatten(signal: str, requests) -> list[dict]:
    """One dict per span / log record / metric data point."""
    out = []
    for req in requests:
        groups = {"traces": req.resource_spans if signal == "traces" else (),
                  "logs": req.resource_logs if signal == "logs" else (),
                  "metrics": req.resource_metrics if signal == "metrics" else ()}[signal]
        for rg in groups:
            resource = _plain(rg.resource)
            scopes = {"traces": "scope_spans", "logs": "scope_logs", "metrics": "scope_metrics"}[signal]
            for sg in getattr(rg, scopes):
                scope = _plain(sg.scope)
                if signal == "traces":
                    out += [{"resource": resource, "scope": scope, "span": _plain(s)} for s in sg.spans]
                elif signal == "logs":
                    out += [{"resource": resource, "scope": scope, "log": _plain(r)}
                            for r in sg.log_records]
                else:
                    for m in sg.metrics:
                        kind = m.WhichOneof("data")
                        data = getattr(m, kind)
                        meta = {"name": m.name, "unit": m.unit, "description": m.description,
                                "kind": kind,
                                "temporality": getattr(data, "aggregation_temporality", None),
                                "monotonic": getattr(data, "is_monotonic", None)}
                        out += [{"resource": resource, "scope": scope, "metric": meta,
                                 "point": _plain(p)} for p in data.data_points]
    return out


def canonical(items: list[dict]) -> list[str]:
    return sorted(json.dumps(i, sort_keys=True) for i in items)


def read_pb(path: Path, signal: str):
    return REQUESTS[signal].FromString(Path(path).read_bytes())


def read_json_lines(path: Path, signal: str) -> list:
    """The requests in an OTLP-JSON-lines file (the Collector's file exporter)."""
    if not Path(path).exists():
        return []
    reqs = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            reqs.append(json_format.ParseDict(_hex_ids_to_base64(json.loads(line)),
                                              REQUESTS[signal](), ignore_unknown_fields=False))
    return reqs


def with_resource_attribute(items: list[dict], key: str, value: str) -> list[dict]:
    want = {"key": key, "value": {"string_value": value}}
    return [i for i in items if want in i["resource"].get("attributes", [])]


def assert_same(signal: str, got: list[dict], want: list[dict]) -> None:
    """Equal multisets, with a readable first difference."""
    g, w = canonical(got), canonical(want)
    if g == w:
        return
    missing = [json.loads(x) for x in w if x not in g]
    extra = [json.loads(x) for x in g if x not in w]
    detail = ""
    if missing and extra:
        detail = _first_difference(missing[0], extra[0])
    raise AssertionError(
        f"{signal}: received {len(g)} items, expected {len(w)}; {len(missing)} expected not "
        f"received, {len(extra)} received not expected.{detail}\n"
        f"first expected not received: {json.dumps(missing[:1], indent=1)[:3000]}\n"
        f"first received not expected: {json.dumps(extra[:1], indent=1)[:3000]}")


def _first_difference(a, b, path="") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"\n first difference at {path or '<root>'}: expected {a!r}, received {b!r}"


def per_signal(template: str) -> str:
    """YAML lines, one per signal: ``template`` formatted with ``s``."""
    return "\n".join(template.format(s=s) for s in SIGNALS)


def assert_files_hold(directory: Path, want: dict, context, case: str | None = None) -> None:
    """Wait until the OTLP-JSON files ``<signal>.json`` in ``directory``
    hold as many items as ``want`` (of resource ``interop.case`` = ``case``
    when given), then compare every signal. ``context()`` says what was
    running, for the timeout message."""
    from tests.peers.run import wait_for

    def received():
        got = {}
        for s in SIGNALS:
            items = flatten(s, read_json_lines(Path(directory) / f"{s}.json", s))
            got[s] = with_resource_attribute(items, "interop.case", case) if case else items
        return got if all(len(got[s]) >= len(want[s]) for s in SIGNALS) else None

    got = wait_for(received, 60, lambda: f"every item in {directory}\n{context()}")
    for s in SIGNALS:
        assert_same(s, got[s], want[s])
