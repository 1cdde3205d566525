# C-level interface of the ring: the shared header struct (ring_layout.h)
# and the writer/reader classes.  See ring.pyx for the protocol.
cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "ring_layout.h" nogil:
    const uint64_t OTP_RING_MAGIC
    const uint32_t OTP_RING_VERSION
    const uint32_t OTP_HEADER_SIZE
    const uint32_t OTP_REC_HEADER
    const uint32_t OTP_REC_ALIGN
    const uint32_t OTP_TYPE_PAD
    const uint32_t OTP_FLAG_CLOSED

    ctypedef struct otp_ring_header:
        uint64_t magic
        uint32_t version
        uint32_t header_size
        uint64_t capacity
        uint64_t max_record
        uint32_t pid
        uint32_t flags
        uint64_t created_ns
        uint64_t start_pos
        uint64_t meta_bytes
        uint64_t write_pos
        uint64_t attempted
        uint64_t committed
        uint64_t committed_bytes
        uint64_t dropped_full
        uint64_t dropped_full_bytes
        uint64_t oversize
        uint64_t oversize_bytes
        uint64_t read_pos
        uint64_t delivered
        uint64_t delivered_bytes
        uint64_t corrupt
        uint64_t corrupt_bytes
        uint64_t next_seq
        uint32_t consumer_pid
        uint64_t corrupt_records
        uint64_t waits
        uint64_t wait_ns

    uint16_t otp_header_check(uint32_t length, uint8_t type, uint64_t seq)
    uint64_t otp_record_span(uint64_t length)
