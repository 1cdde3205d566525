"""Every number of the telemetry wire format, in one place.

Ring record types (``Producer.write(rtype, ...)``), definition kinds (first
byte of a ``Producer.define`` payload), AnyValue tags, flag bits and the
fixed-prefix offsets.  The Cython codecs mirror these in ``cython_ext/wire.pxd``
and ``cython_ext/record_layout.h``;
``tests/codec/test_wire_constants.py`` checks that both agree.

Byte order on the wire is little-endian, except ids (trace id, span id),
which are the big-endian bytes OTLP carries.  See ``otelplug/codec/FORMAT.md``.
"""

FORMAT_VERSION = 1

# -- ring record types (1..15 stay free for tests and ad-hoc callers) --------
SPAN = 16
LOG = 17
METRIC = 18

RECORD_TYPE_NAMES = {SPAN: "span", LOG: "log", METRIC: "metric"}

# -- definition kinds: first byte of a Producer.define payload ---------------
RESOURCE = 1
SCOPE = 2

# key 0 means "none" (a span without a scope); content keys are never 0
NO_KEY = 0

# -- AnyValue tags ------------------------------------------------------------
T_EMPTY = 0         # None
T_STR = 1           # varint len + UTF-8
T_FALSE = 2
T_TRUE = 3
T_INT = 4           # zigzag varint (int64 range)
T_DOUBLE = 5        # f64
T_BYTES = 6         # varint len + bytes
T_ARRAY = 7         # varint n + n tagged values (mixed, empty, or with None)
T_KVLIST = 8        # varint n + n (str key, tagged value)
T_STR_ARRAY = 9     # varint n + n str        (homogeneous, no None)
T_BOOL_ARRAY = 10   # varint n + n u8
T_INT_ARRAY = 11    # varint n + n zigzag varint
T_DOUBLE_ARRAY = 12 # varint n + n f64

# "number" fields of metrics (value, sum, min, max): tag byte + 8 bytes
N_INT = T_INT       # i64 little-endian
N_DOUBLE = T_DOUBLE # f64 little-endian

# -- span / link flags (u32; low bits follow OTLP SpanFlags) ------------------
FLAG_TRACE_FLAGS_MASK = 0xFF        # W3C trace flags (bit 0 = sampled)
FLAG_HAS_IS_REMOTE = 0x100          # OTLP SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
FLAG_IS_REMOTE = 0x200              # OTLP SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
FLAG_SELF_REMOTE = 0x10000          # otelplug: the span's own context is remote
FLAG_HAS_PARENT = 0x20000           # otelplug: parent context present

# -- log flags (u32): low 8 bits trace flags, then presence bits --------------
LOG_HAS_TIME = 0x10000
LOG_HAS_SEVERITY = 0x20000
LOG_HAS_TRACE_FLAGS = 0x40000

# -- span kinds and status codes: OTLP numbering on the wire -----------------
# (the SDK's SpanKind enum is OTLP - 1; StatusCode matches OTLP)
KIND_UNSPECIFIED = 0
KIND_INTERNAL = 1
KIND_SERVER = 2
KIND_CLIENT = 3
KIND_PRODUCER = 4
KIND_CONSUMER = 5
STATUS_UNSET = 0
STATUS_OK = 1
STATUS_ERROR = 2

# -- metric data kinds ---------------------------------------------------------
M_GAUGE = 1
M_SUM = 2
M_HISTOGRAM = 3
M_EXP_HISTOGRAM = 4

# point flags byte
P_HAS_START = 0x1
# exemplar presence byte
X_HAS_SPAN_ID = 0x1
X_HAS_TRACE_ID = 0x2

# -- fixed prefixes -------------------------------------------------------------
# Byte offsets inside the fixed prefix of each record, mirrored from
# cython_ext/record_layout.h (structs with static asserts; the Cython codecs
# cimport the same names from record_layout.pxd).  Integers are little-endian,
# ids big-endian; tests/codec/test_record_layout.py checks both sides agree.

# Span: the part a batch decoder turns into numpy columns without parsing;
# the name bytes start at SPAN_PREFIX.
SPAN_TRACE_ID_AT = 0
SPAN_SPAN_ID_AT = 16
SPAN_PARENT_SPAN_ID_AT = 24
SPAN_START_AT = 32
SPAN_END_AT = 40
SPAN_RESOURCE_KEY_AT = 48
SPAN_SCOPE_KEY_AT = 56
SPAN_FLAGS_AT = 64
SPAN_KIND_AT = 68
SPAN_STATUS_AT = 69
SPAN_VERSION_AT = 70
SPAN_NAME_LEN_AT = 72
SPAN_DROPPED_ATTRIBUTES_AT = 76
SPAN_DROPPED_EVENTS_AT = 80
SPAN_DROPPED_LINKS_AT = 84
SPAN_ATTR_COUNT_AT = 88
SPAN_EVENT_COUNT_AT = 92
SPAN_LINK_COUNT_AT = 96
SPAN_PREFIX = 104

# Log: severity text, event name, body and attributes follow the prefix.
LOG_TRACE_ID_AT = 0
LOG_SPAN_ID_AT = 16
LOG_TIME_AT = 24
LOG_OBSERVED_AT = 32
LOG_RESOURCE_KEY_AT = 40
LOG_SCOPE_KEY_AT = 48
LOG_FLAGS_AT = 56
LOG_SEVERITY_AT = 60
LOG_VERSION_AT = 61
LOG_DROPPED_ATTRIBUTES_AT = 64
LOG_ATTR_COUNT_AT = 68
LOG_PREFIX = 72

# Metric: name, description, unit, schema urls and points follow.
METRIC_RESOURCE_KEY_AT = 0
METRIC_SCOPE_KEY_AT = 8
METRIC_KIND_AT = 16
METRIC_TEMPORALITY_AT = 17
METRIC_MONOTONIC_AT = 18
METRIC_VERSION_AT = 19
METRIC_POINT_COUNT_AT = 20
METRIC_PREFIX = 24
