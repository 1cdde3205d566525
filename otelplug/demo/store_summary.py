"""The end of ``otelplug demo``: what the run left in the telemetry store,
read back through the same queries as ``otelplug query`` (a trace, a stats
table) and the store's size."""
from __future__ import annotations


def print_store_summary(url: str) -> bool:
    """Print the summary; False if the store could not be read."""
    from otelplug.cli.store_output import stats_table, trace_table
    from otelplug.store import StoreError, open_store
    try:
        store = open_store(url, mode="read")
    except StoreError as exc:
        print(f"\nstore: {exc}")
        return False
    try:
        spans = store.count()
        # the trace with the most spans among the latest ones
        recent = store.spans(limit=500)
        per_trace: dict[str, int] = {}
        for r in recent:
            per_trace[r["TraceId"]] = per_trace.get(r["TraceId"], 0) + 1
        print(f"\nfrom the store ({url}):")
        if per_trace:
            tid = max(per_trace, key=per_trace.get)
            print(f"\n$ otelplug query trace {tid}")
            print(trace_table(store.trace(tid)))
        print("\n$ otelplug query stats --by service,name --bucket 1h")
        print(stats_table(store.stats(by="service,name", bucket="1h")))
        logs = store.count("otel_logs")
        points = sum(store.count(t) for t in ("otel_metrics_gauge", "otel_metrics_sum",
                                              "otel_metrics_histogram",
                                              "otel_metrics_exponential_histogram"))
        size = store.file_bytes()
        print(f"\nstore size: {size:,} bytes on disk for {spans:,} spans, {logs:,} log records "
              f"and {points:,} metric points"
              + (f" ({size / spans:.0f} bytes per span, all signals included)" if spans else ""))
        return True
    except StoreError as exc:
        print(f"\nstore: {exc}")
        return False
    finally:
        store.close()
