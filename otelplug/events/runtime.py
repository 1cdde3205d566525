"""What a generated event module calls: one :class:`EventEmitter` per
emitting object.

``emit`` writes the event as one OTLP log record (``event_name``, severity,
the current span's trace context, the attributes) straight into this
process's ring: the same ring, resource/scope definitions and Cython log
codec as :class:`~otelplug.producer.ShmLogRecordProcessor`, without an SDK
logger, LogRecord object or processor chain in between.  With ``logger=``
(an SDK ``Logger``) the event goes through ``logger.emit`` instead, so the
app's own LoggerProvider (its processors and exporters) sees it.

Contract violations (a wrong type, a value outside its constraints, a
resource attribute the registry constrains): in strict mode
:class:`ContractViolation` is raised and nothing is sent; by default the
violation is counted (``stats()["violations"]``, per event and finding id),
logged once per event and finding id, and the event is still sent (the
sidecar's semconv processor and ``otelplug contract report`` see the same
violation downstream).  Nothing is dropped silently: a full ring counts
``dropped``, a value the codec cannot carry counts ``encode_errors``.
"""
from __future__ import annotations

import enum
import logging
import threading
import time
from collections import Counter
from typing import Any, Mapping

from opentelemetry import trace as _trace
from opentelemetry._logs import SeverityNumber

from otelplug.codec import types as _types
from otelplug.semconv.constraints import Constraints, check_value, short_field

log = logging.getLogger("otelplug.events")

_LOG = _types.LOG
_time_ns = time.time_ns
_current_span = _trace.get_current_span


class Level(enum.IntEnum):
    """An event's level, as the log record's severity number (OTLP)."""

    DEBUG = 5
    INFO = 9
    WARNING = 13
    ERROR = 17
    CRITICAL = 21


#: (severity number, text) by level value: a list, because indexing it with
#: an IntEnum is C-level while hashing an Enum runs Python code
_SEVERITY: list[tuple[SeverityNumber, str]] = [(SeverityNumber(n), "") for n in range(25)]
for _level in Level:
    _SEVERITY[_level] = (SeverityNumber(_level.value), "WARN" if _level is Level.WARNING else _level.name)


class ContractViolation(ValueError):
    """An event (or the emitter's resource) breaks the registry's contract."""

    def __init__(self, finding_id: str, message: str):
        super().__init__(message)
        self.finding_id = finding_id


class _Record:
    """The fields the log codec reads from an SDK LogRecord, and no more.
    One per thread and emitter, refilled for each event (building a fresh
    object per event costs more than the encoding)."""

    __slots__ = ("timestamp", "observed_timestamp", "trace_id", "span_id", "trace_flags",
                 "severity_text", "severity_number", "body", "attributes", "event_name")

    def __init__(self) -> None:
        self.body = None


class EventEmitter:
    """Sends the events of one generated module.

    ``resource_attributes`` are merged over the SDK's default resource
    (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, telemetry.sdk.*);
    ``scope`` names the instrumentation scope (the registry).
    """

    def __init__(self, *, resource_attributes: Mapping[str, Any], scope: str, scope_version: str | None = None,
                 strict: bool = False, logger: Any = None, channel: str | None = None, producer: Any = None):
        self.strict = strict
        self.logger = logger
        self.written = 0
        self.dropped = 0
        self.encode_errors = 0
        self.after_close = 0
        self.violations: Counter[tuple[str, str]] = Counter()
        self._logged: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._resource_attributes = {k: v for k, v in resource_attributes.items() if v is not None}
        self._extra: dict[str, Any] = {}
        self._shared = None
        if logger is not None:
            # the app's LoggerProvider owns the resource: keep the identity
            # on each event when that resource lacks it
            provider_resource = getattr(getattr(logger, "resource", None), "attributes", {}) or {}
            self._extra = {k: v for k, v in self._resource_attributes.items() if k not in provider_resource}
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from otelplug.producer import _shared

        self._shared = _shared.acquire(channel, producer=producer)
        self._producer = self._shared.producer
        self._codec = self._shared.definitions.codec
        self._encode = self._codec.encode_log
        self._resource = Resource.create(self._resource_attributes)
        self._scope = InstrumentationScope(scope, scope_version)
        self._local = threading.local()
        # (ring generation, resource key, scope key): the definitions are
        # written once per ring; a new ring (a forked child's, a reclaimed
        # one) gets them again
        self._keys: tuple[int, int, int] | None = None
        _shared.reset_after_fork(self)

    def reset(self) -> None:
        """In a forked child: the definitions go into the child's own ring."""
        self._keys = None

    def _define(self) -> tuple[int, int, int] | None:
        if self._shared is None:  # closed
            return None
        defs = self._shared.definitions
        resource_key, scope_key = defs.resource_key(self._resource), defs.scope_key(self._scope)
        self._keys = (self._producer.generation, resource_key, scope_key)
        return self._keys

    # ------------------------------------------------------------ checks
    def check(self, event: str | None, attribute: str, constraints: Constraints, value: Any) -> None:
        """Report ``value`` if it breaks ``constraints``.  Generated code
        calls this when its inline test of the constraints fails (and for
        arrays), so the words are exactly live-check's."""
        found = check_value(constraints, value)
        if found is None:
            return
        self._report(event, found.finding_id, found.message(event, short_field(attribute, event)))

    def type_violation(self, event: str | None, attribute: str, expected: str, value: Any) -> None:
        field = short_field(attribute, event)
        text = f"{field} must be {expected}, got {type(value).__name__} {value!r}"
        self._report(event, "type_mismatch", f"{event}: {text}" if event else text)

    def _report(self, event: str | None, finding_id: str, message: str) -> None:
        if self.strict:
            raise ContractViolation(finding_id, message)
        key = (event or "<resource>", finding_id)
        with self._lock:
            self.violations[key] += 1
            first = key not in self._logged
            self._logged.add(key)
        if first:
            log.warning("otelplug events: %s (counted in stats()['violations']; sent anyway; "
                        "logged once per event and finding)", message)

    # -------------------------------------------------------------- emit
    def emit(self, event: str, level: Level, attributes: dict[str, Any]) -> bool:
        """Send one event; False when it was not sent (dropped, counted)."""
        if self.logger is not None:
            return self._emit_sdk(event, level, attributes)
        ctx = _current_span().get_span_context()
        try:
            record = self._local.record
        except AttributeError:
            record = self._local.record = _Record()
        record.timestamp = record.observed_timestamp = _time_ns()
        record.trace_id = ctx.trace_id
        record.span_id = ctx.span_id
        # trace id 0: no span (checked directly: SpanContext.is_valid is a Python property)
        record.trace_flags = ctx.trace_flags if ctx.trace_id else None
        record.severity_number, record.severity_text = _SEVERITY[level]
        record.attributes = attributes
        record.event_name = event
        keys = self._keys
        if keys is None or keys[0] != self._producer.generation:
            keys = self._define()
            if keys is None:
                self.after_close += 1
                return False
        try:
            payload = self._encode(record, 0, keys[1], keys[2])
        except Exception as exc:  # a value the format cannot carry: never into the app
            self.encode_errors += 1
            if self.strict:
                raise ContractViolation("encode_error", f"{event}: cannot encode: {exc}") from exc
            return False
        if self._producer.write(_LOG, payload):
            self.written += 1
            return True
        self.dropped += 1
        return False

    def _emit_sdk(self, event: str, level: Level, attributes: dict[str, Any]) -> bool:
        if self._extra:
            attributes = {**self._extra, **attributes}
        number, text = _SEVERITY[level]
        self.logger.emit(timestamp=_time_ns(), severity_number=number, severity_text=text,
                         attributes=attributes, event_name=event)
        self.written += 1
        return True

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "written": self.written, "dropped": self.dropped, "encode_errors": self.encode_errors,
            "after_close": self.after_close,
            "violations": {f"{event}:{fid}": n for (event, fid), n in sorted(self.violations.items())},
        }
        if self._shared is not None:
            out["ring"] = self._producer.stats()
        return out

    def close(self) -> None:
        if self._shared is not None:
            self._shared.release()
            self._shared = None
            self._keys = None
