"""``otelplug demo`` end to end, as a user runs it."""
from __future__ import annotations

import re

from .helpers import run_cli

# pid attempted delivered dropped full oversize lost check
ROW = re.compile(r"^\s*(\d+)" + r"\s+([\d,]+)" * 6 + r"\s+(OK|MISMATCH.*)$")


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def test_demo_accounting_adds_up(shm_dir):
    # a demo that does not stop is caught by the generous subprocess timeout;
    # how long it takes on a loaded machine is not this test's business
    res = run_cli("demo", "--ring-only", "--seconds", "1", "--producers", "2", timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr

    rows = [m.groups() for m in map(ROW.match, res.stdout.splitlines()) if m]
    assert len(rows) == 2, res.stdout
    pids = set()
    oversize_total = 0
    for pid, *numbers, check in rows:
        attempted, delivered, dropped, full, oversize, lost = map(_n, numbers)
        assert check == "OK"
        assert lost == 0                # every producer stopped cleanly
        assert attempted == delivered + dropped
        assert dropped == full + oversize
        assert delivered > 0
        pids.add(pid)
        oversize_total += oversize
    assert len(pids) == 2
    assert oversize_total == 3          # producer 0 writes three to show the accounting
    assert "accounting: OK" in res.stdout
    assert "records/s" in res.stdout    # the live progress and the summary

    # nothing is left behind: rings, definition files, the consumer lock file
    assert list(shm_dir.iterdir()) == []


def test_demo_rejects_bad_arguments():
    res = run_cli("demo", "--ring-only", "--producers", "0")
    assert res.returncode == 2 and "must be positive" in res.stderr


def test_ring_capacity_fits_small_shm(monkeypatch, tmp_path):
    """Docker gives containers 64 MB of /dev/shm: four default 16 MiB rings
    would not fit, and touching a page beyond it kills a producer (SIGBUS)."""
    import os
    from types import SimpleNamespace

    from otelplug.demo import ring_demo
    from otelplug.ring import DEFAULT_CAPACITY

    def free(nbytes):
        monkeypatch.setattr(os, "statvfs", lambda _: SimpleNamespace(
            f_bavail=nbytes // 4096, f_frsize=4096))

    free(24 << 30)
    assert ring_demo.ring_capacity(tmp_path, 4) == DEFAULT_CAPACITY
    free(64 << 20)
    cap = ring_demo.ring_capacity(tmp_path, 4)
    assert cap == 4 << 20 and 4 * (cap + 4096) <= (64 << 20) // 2
    free(1 << 20)
    assert ring_demo.ring_capacity(tmp_path, 40) == 0     # refused, not crashed


def test_full_demo_accounts_for_every_item(tmp_path, shm_dir):
    """The README's main job: adapters -> rings -> sidecar (embedded default
    config) -> OTLP-JSON files.  The spans and log records in the files are
    exactly what the adapters produced."""
    import json
    import re
    out = tmp_path / "out"
    res = run_cli("demo", "--seconds", "1.5", "--adapters", "3", "--rate", "200",
                  "--output", str(out), timeout=90)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK: every item accounted for" in res.stdout
    produced = {m.group(1): int(m.group(2)) for m in
                re.finditer(r"^  (spans|log records)\s+(\d+)\s+\d+\s+\d+$", res.stdout, re.M)}
    assert produced["spans"] > 0 and produced["log records"] > 0

    def count(name, outer, inner, leaf):
        n = 0
        for line in (out / f"otelplug-{name}.jsonl").read_text().splitlines():
            for r in json.loads(line)[outer]:
                for s in r[inner]:
                    n += len(s[leaf])
        return n

    assert count("traces", "resourceSpans", "scopeSpans", "spans") == produced["spans"]
    assert count("logs", "resourceLogs", "scopeLogs", "logRecords") == produced["log records"]
    assert count("metrics", "resourceMetrics", "scopeMetrics", "metrics") > 0
    services = set()
    for line in (out / "otelplug-traces.jsonl").read_text().splitlines():
        for r in json.loads(line)["resourceSpans"]:
            attrs = {a["key"]: a["value"] for a in r["resource"]["attributes"]}
            services.add(attrs["service.name"]["stringValue"])
    assert services == {"demo-web", "demo-job", "demo-gpu"}
    # issue 16, defect 5: the last one out removes the wake and lock files
    assert sorted(p.name for p in shm_dir.iterdir()) == []
