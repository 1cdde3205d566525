/* The fixed prefixes of the span, log and metric records (format version 1).
 *
 * Every record payload starts with a fixed-size prefix that a batch decoder
 * reads without parsing (numpy columns, OTLP encoding, shape hashing).  The
 * structs below describe those bytes; the OTP_*_AT macros are the byte
 * offsets the codecs use, pinned to the struct by the static asserts, so a
 * field moved in one place but not the other does not compile.  Multi-byte
 * integers are little-endian on the wire: read them with le32/le64 at these
 * offsets, never by casting the struct onto unaligned record bytes.
 *
 * otelplug/codec/types.py carries the same names for Python;
 * tests/codec/test_record_layout.py compares the two, and
 * otelplug/codec/FORMAT.md documents the fields.
 */
#ifndef OTELPLUG_RECORD_LAYOUT_H
#define OTELPLUG_RECORD_LAYOUT_H

#include <stdint.h>
#include <stddef.h>

/* -- span: name bytes follow the prefix ---------------------------------- */
typedef struct {
    uint8_t  trace_id[16];
    uint8_t  span_id[8];
    uint8_t  parent_span_id[8];    /* zero: root */
    uint64_t start_time;
    uint64_t end_time;
    uint64_t resource_key;
    uint64_t scope_key;            /* 0: none */
    uint32_t flags;
    uint8_t  kind;
    uint8_t  status;
    uint8_t  version;
    uint8_t  reserved1;
    uint32_t name_len;
    uint32_t dropped_attributes;
    uint32_t dropped_events;
    uint32_t dropped_links;
    uint32_t attr_count;
    uint32_t event_count;
    uint32_t link_count;
    uint32_t reserved2;
} otp_span_prefix;

#define OTP_SPAN_TRACE_ID_AT 0
#define OTP_SPAN_SPAN_ID_AT 16
#define OTP_SPAN_PARENT_SPAN_ID_AT 24
#define OTP_SPAN_START_AT 32
#define OTP_SPAN_END_AT 40
#define OTP_SPAN_RESOURCE_KEY_AT 48
#define OTP_SPAN_SCOPE_KEY_AT 56
#define OTP_SPAN_FLAGS_AT 64
#define OTP_SPAN_KIND_AT 68
#define OTP_SPAN_STATUS_AT 69
#define OTP_SPAN_VERSION_AT 70
#define OTP_SPAN_NAME_LEN_AT 72
#define OTP_SPAN_DROPPED_ATTRIBUTES_AT 76
#define OTP_SPAN_DROPPED_EVENTS_AT 80
#define OTP_SPAN_DROPPED_LINKS_AT 84
#define OTP_SPAN_ATTR_COUNT_AT 88
#define OTP_SPAN_EVENT_COUNT_AT 92
#define OTP_SPAN_LINK_COUNT_AT 96
#define OTP_SPAN_PREFIX 104

_Static_assert(offsetof(otp_span_prefix, trace_id) == OTP_SPAN_TRACE_ID_AT, "span trace_id");
_Static_assert(offsetof(otp_span_prefix, span_id) == OTP_SPAN_SPAN_ID_AT, "span span_id");
_Static_assert(offsetof(otp_span_prefix, parent_span_id) == OTP_SPAN_PARENT_SPAN_ID_AT, "span parent");
_Static_assert(offsetof(otp_span_prefix, start_time) == OTP_SPAN_START_AT, "span start");
_Static_assert(offsetof(otp_span_prefix, end_time) == OTP_SPAN_END_AT, "span end");
_Static_assert(offsetof(otp_span_prefix, resource_key) == OTP_SPAN_RESOURCE_KEY_AT, "span resource");
_Static_assert(offsetof(otp_span_prefix, scope_key) == OTP_SPAN_SCOPE_KEY_AT, "span scope");
_Static_assert(offsetof(otp_span_prefix, flags) == OTP_SPAN_FLAGS_AT, "span flags");
_Static_assert(offsetof(otp_span_prefix, kind) == OTP_SPAN_KIND_AT, "span kind");
_Static_assert(offsetof(otp_span_prefix, status) == OTP_SPAN_STATUS_AT, "span status");
_Static_assert(offsetof(otp_span_prefix, version) == OTP_SPAN_VERSION_AT, "span version");
_Static_assert(offsetof(otp_span_prefix, name_len) == OTP_SPAN_NAME_LEN_AT, "span name_len");
_Static_assert(offsetof(otp_span_prefix, dropped_attributes) == OTP_SPAN_DROPPED_ATTRIBUTES_AT, "span d_attrs");
_Static_assert(offsetof(otp_span_prefix, dropped_events) == OTP_SPAN_DROPPED_EVENTS_AT, "span d_events");
_Static_assert(offsetof(otp_span_prefix, dropped_links) == OTP_SPAN_DROPPED_LINKS_AT, "span d_links");
_Static_assert(offsetof(otp_span_prefix, attr_count) == OTP_SPAN_ATTR_COUNT_AT, "span attr_count");
_Static_assert(offsetof(otp_span_prefix, event_count) == OTP_SPAN_EVENT_COUNT_AT, "span event_count");
_Static_assert(offsetof(otp_span_prefix, link_count) == OTP_SPAN_LINK_COUNT_AT, "span link_count");
_Static_assert(sizeof(otp_span_prefix) == OTP_SPAN_PREFIX, "span prefix size");

/* -- log: severity text, event name, body, attributes follow ------------- */
typedef struct {
    uint8_t  trace_id[16];
    uint8_t  span_id[8];
    uint64_t time;                 /* valid if LOG_HAS_TIME */
    uint64_t observed_time;
    uint64_t resource_key;
    uint64_t scope_key;
    uint32_t flags;
    uint8_t  severity;             /* valid if LOG_HAS_SEVERITY */
    uint8_t  version;
    uint16_t reserved;
    uint32_t dropped_attributes;
    uint32_t attr_count;
} otp_log_prefix;

#define OTP_LOG_TRACE_ID_AT 0
#define OTP_LOG_SPAN_ID_AT 16
#define OTP_LOG_TIME_AT 24
#define OTP_LOG_OBSERVED_AT 32
#define OTP_LOG_RESOURCE_KEY_AT 40
#define OTP_LOG_SCOPE_KEY_AT 48
#define OTP_LOG_FLAGS_AT 56
#define OTP_LOG_SEVERITY_AT 60
#define OTP_LOG_VERSION_AT 61
#define OTP_LOG_DROPPED_ATTRIBUTES_AT 64
#define OTP_LOG_ATTR_COUNT_AT 68
#define OTP_LOG_PREFIX 72

_Static_assert(offsetof(otp_log_prefix, trace_id) == OTP_LOG_TRACE_ID_AT, "log trace_id");
_Static_assert(offsetof(otp_log_prefix, span_id) == OTP_LOG_SPAN_ID_AT, "log span_id");
_Static_assert(offsetof(otp_log_prefix, time) == OTP_LOG_TIME_AT, "log time");
_Static_assert(offsetof(otp_log_prefix, observed_time) == OTP_LOG_OBSERVED_AT, "log observed");
_Static_assert(offsetof(otp_log_prefix, resource_key) == OTP_LOG_RESOURCE_KEY_AT, "log resource");
_Static_assert(offsetof(otp_log_prefix, scope_key) == OTP_LOG_SCOPE_KEY_AT, "log scope");
_Static_assert(offsetof(otp_log_prefix, flags) == OTP_LOG_FLAGS_AT, "log flags");
_Static_assert(offsetof(otp_log_prefix, severity) == OTP_LOG_SEVERITY_AT, "log severity");
_Static_assert(offsetof(otp_log_prefix, version) == OTP_LOG_VERSION_AT, "log version");
_Static_assert(offsetof(otp_log_prefix, dropped_attributes) == OTP_LOG_DROPPED_ATTRIBUTES_AT, "log d_attrs");
_Static_assert(offsetof(otp_log_prefix, attr_count) == OTP_LOG_ATTR_COUNT_AT, "log attr_count");
_Static_assert(sizeof(otp_log_prefix) == OTP_LOG_PREFIX, "log prefix size");

/* -- metric: name, description, unit, schema urls, points follow --------- */
typedef struct {
    uint64_t resource_key;
    uint64_t scope_key;
    uint8_t  kind;                 /* M_GAUGE .. M_EXP_HISTOGRAM */
    uint8_t  temporality;          /* OTLP AggregationTemporality */
    uint8_t  is_monotonic;
    uint8_t  version;
    uint32_t point_count;
} otp_metric_prefix;

#define OTP_METRIC_RESOURCE_KEY_AT 0
#define OTP_METRIC_SCOPE_KEY_AT 8
#define OTP_METRIC_KIND_AT 16
#define OTP_METRIC_TEMPORALITY_AT 17
#define OTP_METRIC_MONOTONIC_AT 18
#define OTP_METRIC_VERSION_AT 19
#define OTP_METRIC_POINT_COUNT_AT 20
#define OTP_METRIC_PREFIX 24

_Static_assert(offsetof(otp_metric_prefix, resource_key) == OTP_METRIC_RESOURCE_KEY_AT, "metric resource");
_Static_assert(offsetof(otp_metric_prefix, scope_key) == OTP_METRIC_SCOPE_KEY_AT, "metric scope");
_Static_assert(offsetof(otp_metric_prefix, kind) == OTP_METRIC_KIND_AT, "metric kind");
_Static_assert(offsetof(otp_metric_prefix, temporality) == OTP_METRIC_TEMPORALITY_AT, "metric temporality");
_Static_assert(offsetof(otp_metric_prefix, is_monotonic) == OTP_METRIC_MONOTONIC_AT, "metric monotonic");
_Static_assert(offsetof(otp_metric_prefix, version) == OTP_METRIC_VERSION_AT, "metric version");
_Static_assert(offsetof(otp_metric_prefix, point_count) == OTP_METRIC_POINT_COUNT_AT, "metric point_count");
_Static_assert(sizeof(otp_metric_prefix) == OTP_METRIC_PREFIX, "metric prefix size");

#endif
