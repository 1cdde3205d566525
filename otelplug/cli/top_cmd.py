"""``otelplug top``: the state of every ring in the shared-memory folder.

Read-only (see ``otelplug.ring.inspect``), so it is safe to run next to a
live deployment, as often as you like.  ``--json`` is for scripts and
monitoring; ``--watch`` refreshes the table and adds per-second rates
computed from the difference between two snapshots.
"""
from __future__ import annotations

import json
import os
import sys
import time

from otelplug import implementation
from otelplug.ring.inspect import RingSnapshot, Snapshot, snapshot
from otelplug.ring.segment import resolve_channel

# rates are keyed by ring path: a pid can own rings on several channels and
# a restarted producer gets a new ring (new nonce) with counters from zero
Rates = dict[str, dict[str, float]]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "top", help="show the rings on this host: fill, records, drops, liveness",
        description="Show every producer ring in the shared-memory folder "
                    "($OTELPLUG_SHM_DIR or /dev/shm), per channel.")
    p.add_argument("--channel", metavar="NAME", help="only this channel (default: all)")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of a table")
    p.add_argument("--watch", type=float, metavar="SECONDS",
                   help="refresh every SECONDS until Ctrl-C, with rates")
    p.add_argument("--api", metavar="URL",
                   help="also show a sidecar's pipelines and exporters from its HTTP API")
    p.add_argument("--token", help="the API's bearer token (default: $OTELPLUG_API_TOKEN)")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        return _run(args)
    except BrokenPipeError:     # `otelplug top --watch 1 | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0


def _run(args) -> int:
    channel = None
    if args.channel:
        try:
            channel = resolve_channel(args.channel)
        except ValueError as exc:
            print(f"otelplug top: {exc}", file=sys.stderr)
            return 2
    api = (args.api, args.token) if getattr(args, "api", None) else None
    if args.watch is None:
        _show(snapshot(channel), None, args.json, watching=False, api=api)
        return 0
    if args.watch <= 0:
        print("otelplug top: --watch needs a positive number of seconds", file=sys.stderr)
        return 2
    return _watch(channel, args.watch, args.json, api)


def _watch(channel: str | None, interval: float, as_json: bool, api=None) -> int:
    clear = sys.stdout.isatty() and not as_json
    prev: Snapshot | None = None
    try:
        while True:
            snap = snapshot(channel)
            _show(snap, compute_rates(prev, snap) if prev else None, as_json, True, clear, api)
            prev = snap
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def compute_rates(prev: Snapshot, cur: Snapshot) -> Rates:
    """Per-second write/read/drop rates of each ring present in both snapshots."""
    dt = (cur.time_ns - prev.time_ns) / 1e9
    if dt <= 0:
        return {}
    before = {r.path: r for c in prev.channels for r in c.producers}
    rates: Rates = {}
    for c in cur.channels:
        for r in c.producers:
            p = before.get(r.path)
            if p is None:
                continue
            rates[r.path] = {
                "written_per_s": max(0, r.written - p.written) / dt,
                "read_per_s": max(0, r.read - p.read) / dt,
                "read_bytes_per_s": max(0, r.read_bytes - p.read_bytes) / dt,
                "dropped_per_s": max(0, r.dropped - p.dropped) / dt,
            }
    return rates


def _show(snap: Snapshot, rates: Rates | None, as_json: bool, watching: bool,
          clear: bool = False, api=None) -> None:
    from . import top_sidecar
    status = top_sidecar.fetch(*api) if api else None
    if as_json:
        doc = snap.to_dict()
        doc["implementation"] = implementation.SELECTED.name
        if status is not None:
            doc["sidecar"] = status
        if rates is not None:
            for c in doc["channels"]:
                for r in c["producers"]:
                    r["rates"] = rates.get(r["path"])
        # while watching: one compact document per line (JSON lines)
        text = json.dumps(doc, separators=(",", ":")) if watching else json.dumps(doc, indent=2)
        print(text, flush=True)
        return
    text = render_table(snap, rates)
    if status is not None:
        text += "\n\n" + top_sidecar.render(status)
    if clear:
        sys.stdout.write("\x1b[H\x1b[2J")
    print(text, flush=True)


# -- text table ---------------------------------------------------------------

def human_bytes(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" or n >= 100 else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.0f}T"  # not reached


def human_count(n: float) -> str:
    if n < 10_000:
        return f"{n:.0f}"
    for unit in ("k", "M", "G"):
        n /= 1000
        if n < 10_000 or unit == "G":
            return f"{n:.1f}{unit}" if n < 100 else f"{n:.0f}{unit}"
    return f"{n:.0f}"  # not reached


def human_age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
    return f"{seconds // 86400:.0f}d{seconds % 86400 // 3600:02.0f}h"


COLUMNS = ("CHANNEL", "PID", "ALIVE", "USED/CAP", "WRITTEN", "READ", "PENDING",
           "DROPPED(full/over)", "DROP_BYTES", "CORRUPT", "AGE", "CONSUMER")
RATE_COLUMNS = ("WRITE/s", "READ/s", "READ_B/s", "DROP/s")


def _alive_label(r: RingSnapshot) -> str:
    if r.alive:
        return "yes"
    return "closed" if r.closed else "DEAD"


def _consumer_label(pid: int | None, c) -> str:
    """A consumer pid, marked dead unless it is the one holding the
    channel's consumer lock now (flock: released by the kernel at death)."""
    if not pid:
        return "-"
    return str(pid) if c.consumer_alive and c.consumer_pid == pid else f"{pid} (dead)"


def _row(r: RingSnapshot, rate: dict | None, with_rates: bool, consumer: str) -> list[str]:
    row = [
        r.channel, str(r.pid), _alive_label(r),
        f"{human_bytes(r.used_bytes)}/{human_bytes(r.capacity)}",
        human_count(r.written), human_count(r.read), human_count(r.pending),
        f"{human_count(r.dropped)} ({human_count(r.dropped_full)}/{human_count(r.oversize)})",
        human_bytes(r.dropped_bytes), human_count(r.corrupt), human_age(r.age_s),
        consumer,
    ]
    if with_rates:
        if rate is None:   # a ring that appeared since the last refresh
            row += ["-"] * len(RATE_COLUMNS)
        else:
            row += [human_count(rate["written_per_s"]), human_count(rate["read_per_s"]),
                    human_bytes(rate["read_bytes_per_s"]), human_count(rate["dropped_per_s"])]
    return row


def _format(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def render_table(snap: Snapshot, rates: Rates | None = None) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(snap.time_ns / 1e9))
    lines = [f"otelplug top  {stamp}  {snap.directory}  implementation: {implementation.SELECTED.name}"]
    if not snap.directory_exists:
        lines.append(f"no rings: {snap.directory} does not exist")
        return "\n".join(lines)
    with_rates = rates is not None
    rows = [list(COLUMNS + (RATE_COLUMNS if with_rates else ()))]
    errors = list(snap.errors)
    for c in snap.channels:
        for r in c.producers:
            rows.append(_row(r, (rates or {}).get(r.path), with_rates,
                             _consumer_label(r.consumer_pid, c)))
        errors += c.errors
    if len(rows) > 1:
        lines += _format(rows)
        consumers = [f"{c.channel}={_consumer_label(c.consumer_pid, c)}" for c in snap.channels
                     if c.consumer_pid]
        if consumers:
            lines.append("consumer lock files: " + " ".join(consumers))
    elif not errors:
        lines.append("no rings")
    for e in errors:
        lines.append(f"ERROR  {e.path}: {e.error}")
    return "\n".join(lines)
