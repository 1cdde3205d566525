"""Running real sidecars with a store exporter, and waiting on the store."""
from __future__ import annotations

import time

import yaml

from otelplug.store import StoreError, open_store

from tests.sidecar.test_reliability import (free_port, scrape, start_producer, start_sidecar,  # noqa: F401
                                            stop_producer, wait_metrics)


def store_config(channel, url, metrics_port, exporters=None, pipelines=None,
                 retention="72h") -> str:
    """A sidecar config: the shm receiver on ``channel``, batch, and the
    store exporter at ``url`` (fast retries and retention runs), plus any
    extra ``exporters`` / ``pipelines`` (dicts)."""
    cfg = {
        "receivers": {"shm": {"channels": [channel]}},
        "processors": {"batch": {"send_batch_size": 500, "timeout": "100ms"}},
        "exporters": {"store": {"url": url, "prune_interval": "1s", "retention": retention,
                                "retry_on_failure": {"initial_interval": "100ms",
                                                     "max_interval": "500ms"}},
                      **(exporters or {})},
        "service": {"telemetry": {"metrics": {"address": f"127.0.0.1:{metrics_port}"}},
                    "pipelines": {"traces": {"receivers": ["shm"], "processors": ["batch"],
                                             "exporters": ["store"]}, **(pipelines or {})}},
    }
    return yaml.safe_dump(cfg)


def stored_span_ids(url, service="reliability") -> list[str]:
    """Every SpanId of the service as stored (duplicates kept)."""
    s = open_store(url, mode="read")
    try:
        n = s.count()
        return [r["SpanId"] for r in s.spans(service=service, limit=max(n, 1))]
    finally:
        s.close()


def wait_for_spans(url, expected: set, timeout=60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    got = []
    while time.monotonic() < deadline:
        try:
            got = stored_span_ids(url)
        except StoreError:      # not created yet (or the writer is restarting)
            time.sleep(0.2)
            continue
        if expected <= set(got):
            return got
        time.sleep(0.2)
    raise AssertionError(f"store is missing {len(expected - set(got))} of {len(expected)} spans")


def metric(port, name, default=0.0) -> float:
    return scrape(port).get(name, default)


def wait_until(fn, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
