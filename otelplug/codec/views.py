"""SDK-shaped views: the objects the codec's encoders read.

The encoders (``encode_span``, ``encode_log``, ``encode_resource``,
``encode_scope``, ``encode_metric``, Cython and pure Python) read objects
shaped like the OpenTelemetry SDK's: ``span.context.trace_id``,
``span.status.status_code.value``, ``attributes.dropped``, metric data
whose class is named ``Sum`` or ``Histogram`` ...  Records that do not come
from an SDK -- OTLP requests (``otelplug.otlp.decode``), edited records
(``otelplug.sidecar.rewrite``), metrics the sidecar makes (spanmetrics), its
own finding logs -- are handed to the encoders in these classes, which only
hold values.  ``*_from_model`` present the codec's decoded model
(``otelplug.codec.model``) this way, so an edited record is written back by
the encoder the producers use.
"""
from __future__ import annotations

from . import model


class Attributes(dict):
    """An attribute dict that also carries its dropped count."""
    dropped = 0


def attributes(values=(), dropped: int = 0) -> Attributes:
    a = Attributes(values)
    a.dropped = dropped
    return a


class TraceState:
    """A W3C tracestate header, as the SDK's TraceState serialises."""

    def __init__(self, header: str | None):
        self.header = header or ""

    def to_header(self) -> str:
        return self.header

    def __bool__(self) -> bool:
        return bool(self.header)


class SpanContext:
    __slots__ = ("trace_id", "span_id", "trace_flags", "is_remote", "trace_state")

    def __init__(self, trace_id, span_id, trace_flags, is_remote, trace_state):
        self.trace_id, self.span_id = trace_id, span_id
        self.trace_flags, self.is_remote, self.trace_state = trace_flags, is_remote, trace_state


class EnumValue:
    """An enum member as the codec reads it (``value``; the Cython codec
    reads ``_value_`` directly, skipping the enum property)."""
    __slots__ = ("value", "_value_")

    def __init__(self, value):
        self.value = self._value_ = value


class Status:
    def __init__(self, code: int, description):
        self.status_code = EnumValue(code)
        self.description = description


class Event:
    def __init__(self, name, timestamp, attrs: Attributes):
        self.name, self.timestamp, self.attributes = name, timestamp, attrs


class Link:
    def __init__(self, context: SpanContext, attrs: Attributes):
        self.context, self.attributes = context, attrs


class Span:
    """``kind`` in the SDK's numbering (OTLP - 1), as an EnumValue."""

    def __init__(self, context, parent, name, kind, start_time, end_time, attrs,
                 dropped_attributes, events, dropped_events, links, dropped_links, status):
        self.context, self.parent, self.name, self.kind = context, parent, name, kind
        self.start_time, self.end_time = start_time, end_time
        self.attributes, self.dropped_attributes = attrs, dropped_attributes
        self.events, self.dropped_events = events, dropped_events
        self.links, self.dropped_links = links, dropped_links
        self.status = status


class LogRecord:
    def __init__(self, trace_id, span_id, trace_flags, timestamp, observed_timestamp,
                 severity_number, severity_text, event_name, body, attrs):
        self.trace_id, self.span_id, self.trace_flags = trace_id, span_id, trace_flags
        self.timestamp, self.observed_timestamp = timestamp, observed_timestamp
        self.severity_number = severity_number      # EnumValue or None
        self.severity_text, self.event_name, self.body = severity_text, event_name, body
        self.attributes = attrs


class Resource:
    def __init__(self, attrs: Attributes, schema_url: str = ""):
        self.attributes, self.schema_url = attrs, schema_url


class Scope:
    def __init__(self, name: str, version=None, schema_url=None, attrs=None):
        self.name, self.version, self.schema_url = name, version, schema_url
        self.attributes = attrs if attrs is not None else {}


# -- metrics: the data class's name tells the encoder the kind ---------------------------
class Buckets:
    def __init__(self, offset: int, bucket_counts):
        self.offset, self.bucket_counts = offset, bucket_counts


class Exemplar:
    def __init__(self, filtered_attributes, value, time_unix_nano, span_id=None, trace_id=None):
        self.filtered_attributes, self.value = filtered_attributes, value
        self.time_unix_nano, self.span_id, self.trace_id = time_unix_nano, span_id, trace_id


class _Point:
    def __init__(self, attrs, start_time_unix_nano, time_unix_nano, exemplars):
        self.attributes = attrs
        self.start_time_unix_nano, self.time_unix_nano = start_time_unix_nano, time_unix_nano
        self.exemplars = exemplars


class NumberPoint(_Point):
    def __init__(self, attrs, start, time, value, exemplars=()):
        super().__init__(attrs, start, time, list(exemplars))
        self.value = value


class HistogramPoint(_Point):
    def __init__(self, attrs, start, time, count, sum_, bucket_counts, explicit_bounds, min_,
                 max_, exemplars=()):
        super().__init__(attrs, start, time, list(exemplars))
        self.count, self.sum, self.min, self.max = count, sum_, min_, max_
        self.bucket_counts, self.explicit_bounds = bucket_counts, explicit_bounds


class ExponentialHistogramPoint(_Point):
    def __init__(self, attrs, start, time, count, sum_, scale, zero_count, positive: Buckets,
                 negative: Buckets, flags, min_, max_, exemplars=()):
        super().__init__(attrs, start, time, list(exemplars))
        self.count, self.sum, self.min, self.max = count, sum_, min_, max_
        self.scale, self.zero_count, self.flags = scale, zero_count, flags
        self.positive, self.negative = positive, negative


class _Data:
    def __init__(self, data_points, aggregation_temporality: int = 0, is_monotonic: bool = False):
        self.data_points = data_points
        self.aggregation_temporality, self.is_monotonic = aggregation_temporality, is_monotonic


class Gauge(_Data):
    pass


class Sum(_Data):
    pass


class Histogram(_Data):
    pass


class ExponentialHistogram(_Data):
    pass


class Metric:
    def __init__(self, name: str, description, unit, data: _Data):
        self.name, self.description, self.unit, self.data = name, description, unit, data


# -- the codec's model, presented for re-encoding ----------------------------------------
def span_from_model(s: model.SpanData) -> Span:
    ctx = SpanContext(s.trace_id, s.span_id, s.trace_flags, s.is_remote, TraceState(s.trace_state))
    parent = (SpanContext(s.trace_id, s.parent_span_id, 0, s.parent_is_remote, TraceState(""))
              if s.parent_span_id is not None else None)
    events = [Event(e.name, e.time_unix_nano, attributes(e.attributes, e.dropped_attributes))
              for e in s.events]
    links = [Link(SpanContext(lk.trace_id, lk.span_id, lk.trace_flags, lk.is_remote,
                              TraceState(lk.trace_state)),
                  attributes(lk.attributes, lk.dropped_attributes))
             for lk in s.links]
    return Span(ctx, parent, s.name, EnumValue(s.kind - 1), s.start_time_unix_nano,
                s.end_time_unix_nano, attributes(s.attributes), s.dropped_attributes, events,
                s.dropped_events, links, s.dropped_links,
                Status(s.status_code, s.status_description))


def log_from_model(r: model.LogData) -> LogRecord:
    sev = EnumValue(r.severity_number) if r.severity_number is not None else None
    return LogRecord(r.trace_id, r.span_id, r.trace_flags, r.time_unix_nano,
                     r.observed_time_unix_nano, sev, r.severity_text, r.event_name, r.body,
                     r.attributes)


def resource_from_model(r: model.Resource) -> Resource:
    return Resource(attributes(r.attributes, r.dropped_attributes), r.schema_url or "")
