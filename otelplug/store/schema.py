"""The store's tables: the OpenTelemetry Collector ClickHouse exporter's
table and column names, so SQL written for that schema carries over.

Column types are abstract here and rendered per backend (``render``).
Differences from ClickHouse, and why, are in SCHEMA.md beside this file:
attribute maps are JSON objects (DuckDB JSON / PostgreSQL jsonb: one
``->>`` syntax in both), and Events / Links / Exemplars are JSON arrays of
objects with the ClickHouse Nested field names.
"""
from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1
META_TABLE = "otelplug_store_meta"      # key/value: schema_version, created_by

# abstract type -> (DuckDB, PostgreSQL)
TYPES = {
    "ts": ("TIMESTAMP_NS", "timestamptz"),
    "str": ("VARCHAR", "text"),
    "json": ("VARCHAR", "jsonb"),     # DuckDB: JSON text, parsed when queried (see SCHEMA.md)
    "u64": ("UBIGINT", "bigint"),
    "i64": ("BIGINT", "bigint"),
    "u32": ("UINTEGER", "bigint"),
    "i32": ("INTEGER", "integer"),
    "u8": ("UTINYINT", "smallint"),
    "f64": ("DOUBLE", "double precision"),
    "bool": ("BOOLEAN", "boolean"),
    "u64[]": ("UBIGINT[]", "bigint[]"),
    "f64[]": ("DOUBLE[]", "double precision[]"),
}

_RESOURCE_SCOPE = [
    ("ResourceAttributes", "json"), ("ResourceSchemaUrl", "str"), ("ScopeName", "str"),
    ("ScopeVersion", "str"), ("ScopeAttributes", "json"), ("ScopeDroppedAttrCount", "u32"),
    ("ScopeSchemaUrl", "str"), ("ServiceName", "str"), ("MetricName", "str"),
    ("MetricDescription", "str"), ("MetricUnit", "str"), ("Attributes", "json"),
    ("StartTimeUnix", "ts"), ("TimeUnix", "ts"),
]


@dataclass(frozen=True)
class Table:
    name: str
    signal: str                  # traces, logs, metrics
    time_column: str             # the partitioning column
    columns: tuple               # ((name, abstract type), ...)

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def render_columns(self, backend: int) -> str:
        """Column definitions; ``backend`` 0 = DuckDB, 1 = PostgreSQL."""
        return ", ".join(f'"{c}" {TYPES[t][backend]}' for c, t in self.columns)


TRACES = Table("otel_traces", "traces", "Timestamp", (
    ("Timestamp", "ts"), ("TraceId", "str"), ("SpanId", "str"), ("ParentSpanId", "str"),
    ("TraceState", "str"), ("SpanName", "str"), ("SpanKind", "str"), ("ServiceName", "str"),
    ("ResourceAttributes", "json"), ("ScopeName", "str"), ("ScopeVersion", "str"),
    ("SpanAttributes", "json"), ("Duration", "i64"), ("StatusCode", "str"),
    ("StatusMessage", "str"), ("Events", "json"), ("Links", "json"),
))

LOGS = Table("otel_logs", "logs", "Timestamp", (
    ("Timestamp", "ts"), ("TraceId", "str"), ("SpanId", "str"), ("TraceFlags", "u8"),
    ("SeverityText", "str"), ("SeverityNumber", "u8"), ("ServiceName", "str"), ("Body", "str"),
    ("ResourceSchemaUrl", "str"), ("ResourceAttributes", "json"), ("ScopeSchemaUrl", "str"),
    ("ScopeName", "str"), ("ScopeVersion", "str"), ("ScopeAttributes", "json"),
    ("LogAttributes", "json"), ("EventName", "str"),
))

_EXEMPLARS = (("Exemplars", "json"), ("Flags", "u32"))

GAUGE = Table("otel_metrics_gauge", "metrics", "TimeUnix", tuple(_RESOURCE_SCOPE) + (
    ("Value", "f64"),) + _EXEMPLARS)
SUM = Table("otel_metrics_sum", "metrics", "TimeUnix", tuple(_RESOURCE_SCOPE) + (
    ("Value", "f64"),) + _EXEMPLARS + (("AggregationTemporality", "i32"), ("IsMonotonic", "bool")))
HISTOGRAM = Table("otel_metrics_histogram", "metrics", "TimeUnix", tuple(_RESOURCE_SCOPE) + (
    ("Count", "u64"), ("Sum", "f64"), ("BucketCounts", "u64[]"), ("ExplicitBounds", "f64[]"),
) + _EXEMPLARS + (("Min", "f64"), ("Max", "f64"), ("AggregationTemporality", "i32")))
EXP_HISTOGRAM = Table("otel_metrics_exponential_histogram", "metrics", "TimeUnix",
                      tuple(_RESOURCE_SCOPE) + (
    ("Count", "u64"), ("Sum", "f64"), ("Scale", "i32"), ("ZeroCount", "u64"),
    ("PositiveOffset", "i32"), ("PositiveBucketCounts", "u64[]"), ("NegativeOffset", "i32"),
    ("NegativeBucketCounts", "u64[]"),
) + _EXEMPLARS + (("Min", "f64"), ("Max", "f64"), ("AggregationTemporality", "i32")))

# otelplug's own: one row per analysed trace (revision), from the
# trace_assembly connector's otelplug.trace.analysis log records
TRACE_ANALYSIS = Table("otel_trace_analysis", "logs", "Timestamp", (
    ("Timestamp", "ts"), ("TraceId", "str"), ("ServiceName", "str"), ("RootName", "str"),
    ("SpanCount", "u32"), ("Depth", "u32"), ("ErrorCount", "u32"), ("Duration", "i64"),
    ("CloseReason", "str"), ("Revision", "u32"), ("LateSpans", "u32"), ("Anomalies", "json"),
    ("CriticalPath", "json"), ("ByOperation", "json"), ("ByService", "json"),
))

TABLES = (TRACES, LOGS, GAUGE, SUM, HISTOGRAM, EXP_HISTOGRAM, TRACE_ANALYSIS)
BY_NAME = {t.name: t for t in TABLES}

# Time partitions are one hour wide: retention drops whole hours, so a 72h
# limit keeps at most 73 partitions per table (small for both backends).
PARTITION_NS = 3600 * 10**9


def partition_name(table: Table, hour: int) -> str:
    """``otel_traces_p491234``: the table's partition for hour number
    ``hour`` (hours since the epoch, UTC)."""
    return f"{table.name}_p{int(hour)}"


def partition_hour(name: str, table: Table) -> int | None:
    prefix = table.name + "_p"
    if not name.startswith(prefix) or not name[len(prefix):].isdigit():
        return None
    return int(name[len(prefix):])
