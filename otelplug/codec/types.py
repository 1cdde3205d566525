"""Every number of the telemetry wire format, in one place.

Ring record types (``Producer.write(rtype, ...)``), definition kinds (first
byte of a ``Producer.define`` payload), AnyValue tags, flag bits and the
fixed-prefix sizes.  The Cython codecs mirror these in ``cython_ext/wire.pxd``;
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
# Span: the part a batch decoder turns into numpy columns without parsing.
#   0 trace_id[16]  16 span_id[8]  24 parent_span_id[8]  32 start u64
#  40 end u64  48 resource_key u64  56 scope_key u64  64 flags u32
#  68 kind u8  69 status u8  70 version u8  71 reserved u8
#  72 name_len u32  76 dropped_attributes u32  80 dropped_events u32
#  84 dropped_links u32  88 attr_count u32  92 event_count u32
#  96 link_count u32  100 reserved u32          104: name bytes, then the rest
SPAN_PREFIX = 104
# Log: 0 trace_id[16] 16 span_id[8] 24 time u64 32 observed u64
#  40 resource_key u64 48 scope_key u64 56 flags u32 60 severity u8
#  61 version u8 62 reserved u16 64 dropped_attributes u32 68 attr_count u32
LOG_PREFIX = 72
# Metric: 0 resource_key u64 8 scope_key u64 16 data kind u8
#  17 temporality u8 18 is_monotonic u8 19 version u8 20 point_count u32
METRIC_PREFIX = 24
