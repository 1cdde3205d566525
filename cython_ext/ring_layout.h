/* The shared-memory layout of one producer's ring (layout version 1).
 *
 * A segment is a 4096-byte header followed by `capacity` data bytes
 * (a power of two).  The header is split by writer so that no cache line is
 * written by both sides: the producer line is written only by the producer,
 * the consumer line only by the consumer.  Positions are free-running u64
 * byte counters (index = pos & (capacity - 1)); all distances are computed
 * modulo 2^64, so wrap-around of the counter itself is harmless.
 *
 * A record is a 16-byte header, the payload, and padding to 8 bytes:
 *   u32 length   payload bytes
 *   u8  type     0 = PAD (skip to the end of the data area), 1..255 user
 *   u8  flags    reserved, 0
 *   u16 check    otp_header_check(length, type, seq): catches garbage
 *   u64 seq      number of records committed before this one
 * A record never straddles the end of the data area: when it does not fit,
 * the producer writes a PAD record over the tail (or, when fewer than 16
 * bytes remain, the tail is skipped implicitly by both sides).
 *
 * Definitions (resources, scopes: written once, referenced by records) live
 * in a side file "<ring>.meta", append-only; `meta_bytes` publishes how much
 * of it is complete, so they survive a consumer restart.
 *
 * otelplug/ring/layout.py mirrors these numbers for the pure-Python
 * reference; tests compare the two.
 */
#ifndef OTELPLUG_RING_LAYOUT_H
#define OTELPLUG_RING_LAYOUT_H

#include <stdint.h>
#include <stddef.h>

#define OTP_RING_MAGIC 0x31474E524C50544FULL /* "OTPLRNG1" little-endian */
#define OTP_RING_VERSION 1u
#define OTP_HEADER_SIZE 4096u
#define OTP_REC_HEADER 16u
#define OTP_REC_ALIGN 8u
#define OTP_TYPE_PAD 0u
#define OTP_FLAG_CLOSED 1u

typedef struct {
    /* identity: written once before the segment is published */
    uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint64_t capacity;
    uint64_t max_record;
    uint32_t pid;
    uint32_t flags;
    uint64_t created_ns;
    uint64_t start_pos;
    uint64_t meta_bytes;   /* committed length of the definitions file (release) */
    /* producer line (offset 64): written only by the producer */
    uint64_t write_pos;
    uint64_t attempted;
    uint64_t committed;
    uint64_t committed_bytes;
    uint64_t dropped_full;
    uint64_t dropped_full_bytes;
    uint64_t oversize;
    uint64_t oversize_bytes;
    /* consumer line (offset 128): written only by the consumer */
    uint64_t read_pos;
    uint64_t delivered;
    uint64_t delivered_bytes;
    uint64_t corrupt;
    uint64_t corrupt_bytes;
    uint64_t next_seq;
    uint32_t consumer_pid;
    uint32_t _cons_reserved;
    uint64_t corrupt_records; /* records lost in corrupt regions (sequence gaps) */
    /* producer line 2 (offset 192): bounded-wait statistics */
    uint64_t waits;
    uint64_t wait_ns;
    uint64_t _prod_reserved[6];
} otp_ring_header;

_Static_assert(offsetof(otp_ring_header, write_pos) == 64, "producer line");
_Static_assert(offsetof(otp_ring_header, read_pos) == 128, "consumer line");
_Static_assert(offsetof(otp_ring_header, waits) == 192, "producer line 2");
_Static_assert(sizeof(otp_ring_header) == 256, "header struct size");

/* 16-bit check over the record header fields.  Not a checksum of the
 * payload (that would cost on the hot path); it makes random bytes pass as a
 * header with probability 2^-16, and the reader's other checks (length
 * bounds, sequence, fit before write_pos) reject nearly all the rest. */
static inline uint16_t otp_header_check(uint32_t length, uint8_t type, uint64_t seq) {
    uint64_t h = ((uint64_t)length << 8) ^ (uint64_t)type ^ (seq * 0x9E3779B97F4A7C15ULL);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 32;
    return (uint16_t)((h ^ (h >> 16)) & 0xFFFFu) ^ 0x4F54u;
}

static inline uint64_t otp_record_span(uint64_t length) {
    return (OTP_REC_HEADER + length + (OTP_REC_ALIGN - 1)) & ~(uint64_t)(OTP_REC_ALIGN - 1);
}

#endif
