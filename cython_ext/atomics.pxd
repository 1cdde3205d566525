# Extern declarations for atomics.h: acquire/release and relaxed atomics and
# the fork generation counter.  See the header for why each exists.
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "atomics.h" nogil:
    uint64_t otp_load_acquire_u64(const uint64_t *p)
    void otp_store_release_u64(uint64_t *p, uint64_t v)
    uint64_t otp_load_relaxed_u64(const uint64_t *p)
    void otp_store_relaxed_u64(uint64_t *p, uint64_t v)
    uint32_t otp_load_relaxed_u32(const uint32_t *p)
    void otp_store_relaxed_u32(uint32_t *p, uint32_t v)
    void otp_futex_wake(uint32_t *word)
    int otp_futex_wait(uint32_t *word, uint32_t expected, uint64_t timeout_ns)
    const int OTP_HAVE_FUTEX
    int otp_install_atfork()
    uint64_t otp_fork_gen()
