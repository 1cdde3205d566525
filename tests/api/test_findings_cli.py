"""``otelplug semconv live-check`` prints one line per finding group by
default (``--each`` keeps one line per finding)."""
from __future__ import annotations

import json

from otelplug.cli.main import main
from tests.requirements import require_shared


def _spans(n):
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": f"{i + 1:032x}", "spanId": f"{i + 1:016x}", "name": "GET", "kind": 2,
            "startTimeUnixNano": "1", "endTimeUnixNano": "2",
            "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}]} for i in range(n)]}]}]}


def test_live_check_groups_by_default(tmp_path, capsys):
    registry = str(require_shared("semconv-upstream", "main"))
    samples = tmp_path / "spans.json"
    samples.write_text(json.dumps(_spans(3)))
    main(["semconv", "live-check", "--registry", registry, "--input", str(samples), "--no-stats"])
    out = capsys.readouterr().out
    dep = [ln for ln in out.splitlines() if " deprecated " in ln and "http.method" in ln]
    assert len(dep) == 1, out
    assert " 3 " in dep[0] and "renamed to http.request.method" in dep[0], dep
    assert "1 finding group, 3 items" in out
    main(["semconv", "live-check", "--registry", registry, "--input", str(samples), "--no-stats", "--each"])
    each = capsys.readouterr().out
    assert sum(1 for ln in each.splitlines() if "deprecated" in ln and "http.method" in ln) == 3, each
