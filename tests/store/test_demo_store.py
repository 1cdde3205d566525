"""``otelplug demo`` ends with what it stored: a trace, a stats table and
the store's size, read back from the store."""
from __future__ import annotations

import json
import re

from tests.cli.helpers import run_cli


def test_demo_prints_a_trace_stats_and_size_from_the_store(tmp_path):
    out = tmp_path / "demo"
    r = run_cli("demo", "--seconds", "1", "--adapters", "2", "--rate", "200", "--output", str(out),
                timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = r.stdout
    assert "OK: every item accounted for" in text
    m = re.search(r"\$ otelplug query trace ([0-9a-f]{32})\ntrace \1: (\d+) spans", text)
    assert m and int(m.group(2)) >= 1, text[-3000:]
    assert "$ otelplug query stats --by service,name --bucket 1h" in text and "p95 ms" in text
    size = re.search(r"store size: ([\d,]+) bytes on disk for ([\d,]+) spans", text)
    assert size and int(size.group(1).replace(",", "")) > 0
    stored = int(size.group(2).replace(",", ""))
    accepted = int(re.search(r"^\s+spans\s+\d+\s+(\d+)", text, re.M).group(1))
    assert stored == accepted
    # the same store answers the query command afterwards
    q = run_cli("query", "trace", m.group(1), "--store", f"duckdb://{out}/otelplug-store.duckdb",
                "--format", "json", timeout=60)
    assert q.returncode == 0 and len(json.loads(q.stdout)) == int(m.group(2))
