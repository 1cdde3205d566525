/* Explicit memory ordering for the shared-memory rings.
 *
 * Every cross-process handoff in otelplug is one of two patterns:
 *   producer: fill bytes, then store_release(write_pos)
 *   consumer: load_acquire(write_pos), read bytes, then store_release(read_pos)
 * The acquire/release pairs are what make the bytes visible in order on any
 * architecture (ARM, POWER), not just on x86 where plain stores happen to be
 * ordered.  Counters that are only statistics use relaxed atomics: they must
 * not tear, but they order nothing.
 */
#ifndef OTELPLUG_ATOMICS_H
#define OTELPLUG_ATOMICS_H

#include <stdint.h>
#include <pthread.h>

static inline uint64_t otp_load_acquire_u64(const volatile uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void otp_store_release_u64(volatile uint64_t *p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint64_t otp_load_relaxed_u64(const volatile uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void otp_store_relaxed_u64(volatile uint64_t *p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline uint32_t otp_load_relaxed_u32(const volatile uint32_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void otp_store_relaxed_u32(volatile uint32_t *p, uint32_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Fork generation: bumped in every child by a pthread_atfork handler, so a
 * writer can tell in one load that it was inherited from its parent and must
 * not touch the parent's ring.  It covers os.fork(), multiprocessing and any
 * C library calling fork(). */
static volatile uint64_t otp_fork_generation = 0;
static int otp_atfork_installed = 0;

static void otp_on_fork_child(void) {
    __atomic_add_fetch(&otp_fork_generation, 1, __ATOMIC_RELAXED);
}
static inline int otp_install_atfork(void) {
    if (otp_atfork_installed) return 0;
    otp_atfork_installed = 1;
    return pthread_atfork(NULL, NULL, otp_on_fork_child);
}
static inline uint64_t otp_fork_gen(void) {
    return __atomic_load_n(&otp_fork_generation, __ATOMIC_RELAXED);
}

/* Futex wake-up for an idle consumer (Linux).  The consumer sets a
 * "sleeping" flag and waits on a sequence word with a timeout; a producer
 * that sees the flag after publishing bumps the word and wakes it.  There is
 * deliberately no fence between the producer's publish and its flag check:
 * a wake-up missed in that window only delays delivery until the consumer's
 * timeout, it never loses data, and the hot path stays fence-free. */
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>
static inline void otp_futex_wake(volatile uint32_t *word) {
    __atomic_add_fetch(word, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}
static inline int otp_futex_wait(volatile uint32_t *word, uint32_t expected, uint64_t timeout_ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(timeout_ns / 1000000000ULL);
    ts.tv_nsec = (long)(timeout_ns % 1000000000ULL);
    return (int)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, &ts, NULL, 0);
}
#define OTP_HAVE_FUTEX 1
#else
static inline void otp_futex_wake(volatile uint32_t *word) { __atomic_add_fetch(word, 1, __ATOMIC_RELEASE); }
static inline int otp_futex_wait(volatile uint32_t *word, uint32_t expected, uint64_t timeout_ns) {
    struct timespec ts = { (time_t)(timeout_ns / 1000000000ULL), (long)(timeout_ns % 1000000000ULL) };
    nanosleep(&ts, NULL);
    return 0;
}
#define OTP_HAVE_FUTEX 0
#endif

#endif
