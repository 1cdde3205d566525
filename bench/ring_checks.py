"""What the shm receiver's record checks (issue 18, item 1) cost per span.

``otelplug/sidecar/receivers/ring_checks.py`` walks every span record with
the Cython shape hasher before any pipeline sees it, so that a corrupt one is
skipped and counted there.  The peer, measured in the same run on the same
batches: the Cython OTLP encoder (``otlp_encoder.encode_traces``), which
every span exported over OTLP goes through anyway.  Batches of 4,096 SDK
spans (a name, 4-6 attributes, resource and scope by key), the two fed
alternately in chunks, ``--repeats`` rounds, CPU time per span by
``time.process_time``, medians.

    python bench/ring_checks.py              # ~10-20 s
    python bench/ring_checks.py --spans 200000 --repeats 9
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _batch(n: int):
    from tests.sidecar.helpers import records_from_spans, sdk_spans
    return records_from_spans(sdk_spans(n, attrs={"http.route": "/items/{id}", "ok": True}))


def _cpu_per_span(fn, batch, rounds: int) -> float:
    t = time.process_time()
    for _ in range(rounds):
        fn(batch)
    return (time.process_time() - t) / (rounds * len(batch))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=100_000, help="spans per measurement")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    from otelplug._ext import otlp_encoder
    from otelplug.sidecar.receivers.ring_checks import check_spans

    batch = _batch(4096)
    rounds = max(1, args.spans // len(batch))
    check_spans(batch)
    otlp_encoder.encode_traces(batch)
    rows = {"check_spans": [], "encode_traces": []}
    for _ in range(args.repeats):
        rows["check_spans"].append(_cpu_per_span(check_spans, batch, rounds))
        rows["encode_traces"].append(_cpu_per_span(otlp_encoder.encode_traces, batch, rounds))
    print(f"{platform.python_implementation()} {platform.python_version()}, nproc {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    med = {k: statistics.median(v) for k, v in rows.items()}
    for k, v in med.items():
        print(f"  {k:14s} {v * 1e9:8.1f} ns CPU per span (median of {args.repeats})")
    print(f"  check / encode = {med['check_spans'] / med['encode_traces']:.3f}")


if __name__ == "__main__":
    main()
