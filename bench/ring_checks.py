"""What the shm receiver's record checks (issue 18, item 1) cost per record.

``otelplug/sidecar/receivers/ring_checks.py`` walks every span and log
record (Cython, no objects built) before any pipeline sees it, so that a
corrupt one is skipped and counted there.  The peer, measured in the same
run on the same batches: the Cython OTLP encoder (``encode_traces``,
``encode_logs``), which every record exported over OTLP goes through anyway.
Batches of 4,096 SDK spans (a name, 4-6 attributes) and 4,096 SDK log
records (a body, 3 attributes), resource and scope by key, check and encoder
measured alternately, ``--repeats`` rounds, CPU time per record by
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


def _log_batch(n: int):
    """SDK log records (a body, three attributes) encoded as ring records."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from otelplug import codec
    from otelplug.codec.recordset import RecordSet
    lp = LoggerProvider()
    mem = InMemoryLogRecordExporter()
    lp.add_log_record_processor(SimpleLogRecordProcessor(mem))
    logger = lp.get_logger("bench")
    for i in range(n):
        logger.emit(body=f"request {i} done", attributes={"i": i, "route": "/items/{id}", "ok": True})
    finished = mem.get_finished_logs()
    rdef = codec.encode_resource(finished[0].resource)
    sdef = codec.encode_scope(finished[0].instrumentation_scope)
    rkey, skey = codec.definition_key(rdef), codec.definition_key(sdef)
    parts = [codec.encode_log(d.log_record, 0, rkey, skey) for d in finished]
    return RecordSet.from_parts("logs", parts, {rkey: rdef, skey: sdef})


def _cpu_per_span(fn, batch, rounds: int) -> float:
    t = time.process_time()
    for _ in range(rounds):
        fn(batch)
    return (time.process_time() - t) / (rounds * len(batch))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=100_000, help="records per measurement")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    from otelplug._ext import otlp_encoder
    from otelplug.sidecar.receivers.ring_checks import check_logs, check_spans

    pairs = {"spans": (_batch(4096), check_spans, otlp_encoder.encode_traces),
             "logs": (_log_batch(4096), check_logs, otlp_encoder.encode_logs)}
    rows = {name: ([], []) for name in pairs}
    for batch, check, encode in pairs.values():
        check(batch)
        encode(batch)
    for _ in range(args.repeats):
        for name, (batch, check, encode) in pairs.items():
            rounds = max(1, args.spans // len(batch))
            rows[name][0].append(_cpu_per_span(check, batch, rounds))
            rows[name][1].append(_cpu_per_span(encode, batch, rounds))
    print(f"{platform.python_implementation()} {platform.python_version()}, nproc {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    for name, (checks, encodes) in rows.items():
        c, e = statistics.median(checks), statistics.median(encodes)
        print(f"  {name:6s} check {c * 1e9:7.1f} ns/record   OTLP encode {e * 1e9:7.1f} ns/record"
              f"   check / encode = {c / e:.3f}   (medians of {args.repeats})")


if __name__ == "__main__":
    main()
