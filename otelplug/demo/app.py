"""Orchestration of ``otelplug demo``: start the sidecar with the embedded
default config on a private channel, start the adapters, show progress,
drain, and account for every span and log record."""
from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import time
from pathlib import Path

from .adapters import KINDS, run_adapter


def _counter(tel, name, **labels) -> float:
    fam = tel.get(name)
    if fam is None:
        return 0.0
    return sum(v for k, v in fam.samples() if all(
        k[fam.labelnames.index(n)] == str(val) for n, val in labels.items()))


class Progress:
    """Reads the sidecar's own metrics: what the user would scrape."""

    def __init__(self, service):
        self.tel = service.telemetry

    def snapshot(self) -> dict:
        t = self.tel
        t.exposition()   # runs the gauge callbacks
        return {
            "spans_in": _counter(t, "receiver_accepted_spans"),
            "logs_in": _counter(t, "receiver_accepted_log_records"),
            "points_in": _counter(t, "receiver_accepted_metric_points"),
            # the file exporters: every item once (the store is counted apart)
            "spans_out": _counter(t, "exporter_sent_spans", exporter="file/traces"),
            "logs_out": _counter(t, "exporter_sent_log_records", exporter="file/logs"),
            "points_out": _counter(t, "exporter_sent_metric_points", exporter="file/metrics"),
            "stored": sum(_counter(t, f"exporter_sent_{w}", exporter="store")
                          for w in ("spans", "log_records", "metric_points")),
            "ring_drops": _counter(t, "ring_dropped_records") + _counter(t, "ring_retired_dropped_records"),
            "lost": _counter(t, "ring_lost_in_flight_records"),
            "failed": sum(_counter(t, f"exporter_{w}_{x}") for w in ("send_failed", "enqueue_failed")
                          for x in ("spans", "log_records", "metric_points")),
        }


def run(args) -> int:
    if args.adapters < 1 or args.seconds <= 0 or args.rate < 0:
        print("otelplug demo: --adapters must be >= 1, --seconds > 0 and --rate >= 0", file=sys.stderr)
        return 2
    channel = args.channel or f"demo-{os.getpid()}"
    outdir = Path(args.output).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    store_path = outdir / "otelplug-store.duckdb"     # where the default config's store exporter writes
    os.environ.update(OTELPLUG_CHANNEL=channel, OTELPLUG_OUTPUT_DIR=str(outdir),
                      OTELPLUG_METRICS_ADDRESS="127.0.0.1:0", OTELPLUG_HEALTH_ENDPOINT="127.0.0.1:0")
    for name in ("traces", "metrics", "logs", "analytics"):
        (outdir / f"otelplug-{name}.jsonl").unlink(missing_ok=True)
    (outdir / "alerts-state.json").unlink(missing_ok=True)
    for suffix in ("", ".wal"):   # each demo run starts with an empty store
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)

    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.default_config import DEFAULT_CONFIG
    from otelplug.sidecar.factories import Registry
    from otelplug.sidecar.service import Service
    from . import alerts as demo_alerts
    cfg = load("<embedded default config + demo alerts>", Registry.default(),
               text=demo_alerts.config(DEFAULT_CONFIG))
    service = Service(cfg)
    service.start()
    prog = Progress(service)
    print(f"otelplug demo: sidecar running the embedded default config on channel {channel!r}")
    print(f"  self-metrics: http://{service.metrics_server.address}/metrics")
    from otelplug.demo import status_page
    page_api, page_url = status_page.start(service)
    print(f"  status page: {page_url}")

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    kinds = [KINDS[i % len(KINDS)] for i in range(args.adapters)]
    procs = [ctx.Process(target=run_adapter, args=(k, i, channel, args.seconds, args.rate, out),
                         name=f"adapter-{k}-{i}", daemon=True) for i, k in enumerate(kinds)]
    for p in procs:
        p.start()
    print(f"  adapters: {', '.join(f'{k}[pid {p.pid}]' for k, p in zip(kinds, procs))}\n")
    print(f"{'time':>5}  {'spans in':>9} {'spans/s':>8} {'logs in':>8} {'points in':>9} "
          f"{'exported':>9} {'ring drops':>10}")
    t0, t0_wall = time.monotonic(), time.time()
    alert_lines: list[str] = []
    last = (t0, 0.0)
    tallies = []
    try:
        while any(p.is_alive() for p in procs) or not out.empty():
            try:
                tallies.append(out.get(timeout=1.0))
            except queue.Empty:
                pass
            now = time.monotonic()
            if now - last[0] >= 1.0:
                s = prog.snapshot()
                rate = (s["spans_in"] - last[1]) / (now - last[0])
                print(f"{now - t0:5.1f}  {s['spans_in']:9.0f} {rate:8.0f} {s['logs_in']:8.0f} "
                      f"{s['points_in']:9.0f} {s['spans_out'] + s['logs_out'] + s['points_out']:9.0f} "
                      f"{s['ring_drops']:10.0f}", flush=True)
                last = (now, s["spans_in"])
        for p in procs:
            p.join(timeout=10)
        # everything the adapters committed is in the rings: let the sidecar
        # drain it, reclaim the dead rings, and flush the batch processor
        shm = service.receivers.get("shm")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            s = prog.snapshot()
            rings = sum(len(c.rings) for c in shm.chan.values()) if shm else 0
            if rings == 0 and s["spans_in"] == s["spans_out"] and s["logs_in"] == s["logs_out"] \
                    and s["points_in"] == s["points_out"] \
                    and s["stored"] == s["spans_in"] + s["logs_in"] + s["points_in"]:
                break
            time.sleep(0.1)
        retired = [a for c in shm.chan.values() for a in c.retired] if shm else []
        demo_alerts.wait_resolved(service, 5.0)
        alert_lines = demo_alerts.summary(service, t0_wall)
        if getattr(args, "serve", False):     # the summary now, then the page until Ctrl-C
            code = _summary(prog.snapshot(), tallies, retired, outdir, time.monotonic() - t0)
            status_page.serve_until_interrupted(page_url)
            return code
    finally:
        page_api.shutdown()
        service.shutdown()
        for p in procs:
            if p.is_alive():
                p.terminate()
    s = prog.snapshot()
    code = _summary(s, tallies, retired, outdir, time.monotonic() - t0)
    print("\n".join(alert_lines))
    from .store_summary import print_store_summary
    stored = print_store_summary(f"duckdb://{store_path}")
    return code if stored else max(code, 1)


def _summary(s, tallies, retired, outdir: Path, elapsed: float) -> int:
    spans = sum(t["spans"] for t in tallies)
    logs = sum(t["logs"] for t in tallies)
    print(f"\nsummary after {elapsed:.1f}s ({len(tallies)} adapters):")
    print(f"  {'signal':<14}{'produced':>10}{'accepted':>10}{'exported':>10}")
    print(f"  {'spans':<14}{spans:>10}{s['spans_in']:>10.0f}{s['spans_out']:>10.0f}")
    print(f"  {'log records':<14}{logs:>10}{s['logs_in']:>10.0f}{s['logs_out']:>10.0f}")
    print(f"  {'metric points':<14}{'-':>10}{s['points_in']:>10.0f}{s['points_out']:>10.0f}")
    print(f"  errors {sum(t['errors'] for t in tallies)}, slow outliers {sum(t['slow'] for t in tallies)}")
    print("\nper producer ring (attempted = delivered + dropped + lost in flight):")
    ok = True
    for a in sorted(retired, key=lambda a: a.pid):
        good = a.attempted == a.delivered + a.dropped + a.lost_in_flight
        ok &= good
        print(f"  pid {a.pid:>7}: attempted {a.attempted:>7} delivered {a.delivered:>7} "
              f"dropped {a.dropped:>5} lost {a.lost_in_flight:>3}  {'OK' if good else 'MISMATCH'}")
    dropped = sum(a.dropped for a in retired)
    print(f"\nring drops {dropped:.0f}, lost in flight {s['lost']:.0f}, export failures {s['failed']:.0f}")
    print("\noutput (OTLP-JSON lines):")
    for name in ("traces", "metrics", "logs"):
        f = outdir / f"otelplug-{name}.jsonl"
        print(f"  {f}  ({f.stat().st_size if f.exists() else 0:,} bytes)")
    from .traces_view import print_traces
    print_traces(outdir / "otelplug-traces.jsonl")
    exported_all = s["spans_in"] == s["spans_out"] and s["logs_in"] == s["logs_out"] \
        and s["points_in"] == s["points_out"] \
        and s["stored"] == s["spans_in"] + s["logs_in"] + s["points_in"]
    print(f"  telemetry store: {s['stored']:.0f} items (spans, log records, metric points)")
    verdict = ok and exported_all and s["failed"] == 0 and spans == s["spans_in"] + _span_drops(tallies)
    print("\nOK: every item accounted for" if verdict else "\nMISMATCH: see the table above")
    return 0 if verdict else 1


def _span_drops(tallies) -> int:
    return sum(t.get("span_drops", 0) for t in tallies)
