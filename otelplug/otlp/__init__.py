"""OTLP translation: ring records <-> OTLP protobuf messages and OTLP-JSON.

``encode``: RecordSet -> Export*ServiceRequest (the reference path; the
exporters' fast path writes the same bytes in Cython).
``decode``: Export*ServiceRequest -> RecordSet, so OTLP from any SDK feeds
the same pipelines as the rings.
``jsonfmt``: OTLP-JSON (hex ids, integer enums) <-> messages.
"""
