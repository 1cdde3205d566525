# Wire-format numbers for the telemetry codecs, mirrored from
# otelplug/codec/types.py (tests/codec/test_wire_constants.py checks that the
# two agree).  An enum so every codec module gets them as C constants.

cdef enum:
    FORMAT_VERSION = 1

    REC_SPAN = 16
    REC_LOG = 17
    REC_METRIC = 18

    DEF_RESOURCE = 1
    DEF_SCOPE = 2

    T_EMPTY = 0
    T_STR = 1
    T_FALSE = 2
    T_TRUE = 3
    T_INT = 4
    T_DOUBLE = 5
    T_BYTES = 6
    T_ARRAY = 7
    T_KVLIST = 8
    T_STR_ARRAY = 9
    T_BOOL_ARRAY = 10
    T_INT_ARRAY = 11
    T_DOUBLE_ARRAY = 12

    FLAG_TRACE_FLAGS_MASK = 0xFF
    FLAG_HAS_IS_REMOTE = 0x100
    FLAG_IS_REMOTE = 0x200
    FLAG_SELF_REMOTE = 0x10000
    FLAG_HAS_PARENT = 0x20000

    LOG_HAS_TIME = 0x10000
    LOG_HAS_SEVERITY = 0x20000
    LOG_HAS_TRACE_FLAGS = 0x40000

    M_GAUGE = 1
    M_SUM = 2
    M_HISTOGRAM = 3
    M_EXP_HISTOGRAM = 4
    P_HAS_START = 1
    X_HAS_SPAN_ID = 1
    X_HAS_TRACE_ID = 2

    MAX_DEPTH = 64
