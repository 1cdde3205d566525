"""The plain data model records decode to: what OTLP carries, nothing more.

Decoders build these; ``otelplug.codec.from_sdk`` builds the same from SDK
objects, so a round trip test is ``decode(encode(x)) == from_sdk(x)``.

Conventions: ids are ints (0 = absent); attribute maps are dicts whose
sequence values are tuples; span kinds and status codes use OTLP numbers;
times are integer nanoseconds since the epoch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Resource:
    attributes: dict = field(default_factory=dict)
    schema_url: str | None = None
    dropped_attributes: int = 0


@dataclass
class Scope:
    name: str = ""
    version: str | None = None
    schema_url: str | None = None
    attributes: dict = field(default_factory=dict)
    dropped_attributes: int = 0


@dataclass
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: dict = field(default_factory=dict)
    dropped_attributes: int = 0


@dataclass
class SpanLink:
    trace_id: int
    span_id: int
    trace_flags: int = 0
    trace_state: str = ""
    is_remote: bool = False
    attributes: dict = field(default_factory=dict)
    dropped_attributes: int = 0


@dataclass
class SpanData:
    trace_id: int
    span_id: int
    name: str
    trace_flags: int = 0
    trace_state: str = ""
    is_remote: bool = False
    parent_span_id: int | None = None     # None: root span
    parent_is_remote: bool = False
    kind: int = 1                         # OTLP: 1 internal .. 5 consumer
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0
    attributes: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    links: list = field(default_factory=list)
    status_code: int = 0                  # OTLP: 0 unset, 1 ok, 2 error
    status_description: str | None = None
    dropped_attributes: int = 0
    dropped_events: int = 0
    dropped_links: int = 0
    resource_key: int = 0
    scope_key: int = 0


@dataclass
class LogData:
    time_unix_nano: int | None = None
    observed_time_unix_nano: int = 0
    trace_id: int = 0
    span_id: int = 0
    trace_flags: int | None = None
    severity_number: int | None = None
    severity_text: str | None = None
    event_name: str | None = None
    body: Any = None
    attributes: dict = field(default_factory=dict)
    dropped_attributes: int = 0
    resource_key: int = 0
    scope_key: int = 0


@dataclass
class Exemplar:
    filtered_attributes: dict
    value: int | float
    time_unix_nano: int
    span_id: int | None = None
    trace_id: int | None = None


@dataclass
class NumberPoint:
    attributes: dict
    start_time_unix_nano: int | None
    time_unix_nano: int
    value: int | float
    exemplars: list = field(default_factory=list)


@dataclass
class HistogramPoint:
    attributes: dict
    start_time_unix_nano: int | None
    time_unix_nano: int
    count: int
    sum: int | float
    bucket_counts: tuple
    explicit_bounds: tuple
    min: int | float
    max: int | float
    exemplars: list = field(default_factory=list)


@dataclass
class ExpHistogramPoint:
    attributes: dict
    start_time_unix_nano: int | None
    time_unix_nano: int
    count: int
    sum: int | float
    scale: int
    zero_count: int
    positive_offset: int
    positive_bucket_counts: tuple
    negative_offset: int
    negative_bucket_counts: tuple
    flags: int
    min: int | float
    max: int | float
    exemplars: list = field(default_factory=list)


@dataclass
class MetricData:
    name: str
    description: str | None
    unit: str | None
    kind: int                     # types.M_GAUGE / M_SUM / M_HISTOGRAM / M_EXP_HISTOGRAM
    temporality: int = 0          # OTLP AggregationTemporality
    is_monotonic: bool = False
    points: list = field(default_factory=list)
    resource_schema_url: str | None = None
    scope_schema_url: str | None = None
    resource_key: int = 0
    scope_key: int = 0
