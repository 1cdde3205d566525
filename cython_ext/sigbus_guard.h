/* SIGBUS guard for ring mappings the consumer does not control.
 *
 * A ring segment is a file shared with a producer the sidecar need not
 * trust.  If anyone shrinks the file (ftruncate) while it is mapped, touching
 * a page past the new end raises SIGBUS, which kills the process by default.
 * The consumer checks the file size before it reads, but batches lent to the
 * pipelines keep reading ring memory afterwards, and a check can always race
 * with a truncation.  So each consumer mapping is registered here; on a
 * SIGBUS inside a registered range the handler maps anonymous zero pages over
 * the rest of that range (the faulting access is then retried and reads
 * zeros, which the decoders reject as corrupt) and marks the range "hit";
 * the reader sees the mark and drops the ring.  A SIGBUS anywhere else goes
 * to the previous handler (or the default action), as before.  Wayland
 * compositors guard client shared memory the same way.
 *
 * mmap() is not on POSIX's async-signal-safe list, but on Linux it is a
 * plain system call with no user-space locks, which is what matters here.
 * A handler installed later (faulthandler.enable() after the first reader)
 * is chained to when the next reader re-installs this one.
 */
#ifndef OTELPLUG_SIGBUS_GUARD_H
#define OTELPLUG_SIGBUS_GUARD_H

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#define OTP_GUARD_SLOTS 4096

typedef struct {
    uintptr_t start;
    uintptr_t end;
    int used;     /* atomic: set last on register, cleared first on release */
    int hit;      /* atomic: a fault was absorbed in this range */
} otp_guard_slot;

static otp_guard_slot otp_guard_slots[OTP_GUARD_SLOTS];
static struct sigaction otp_guard_prev;
static uintptr_t otp_guard_page = 4096;

static void otp_guard_handler(int sig, siginfo_t *si, void *ctx) {
    uintptr_t a = (uintptr_t)si->si_addr;
    int i;
    /* only a real memory fault (si_code > 0) is absorbed: a SIGBUS sent by
     * kill() or raise() carries no fault address */
    for (i = 0; si->si_code > 0 && i < OTP_GUARD_SLOTS; i++) {
        otp_guard_slot *s = &otp_guard_slots[i];
        if (__atomic_load_n(&s->used, __ATOMIC_ACQUIRE) == 1 && a >= s->start && a < s->end) {
            uintptr_t from = a & ~(otp_guard_page - 1);
            if (mmap((void *)from, s->end - from, PROT_READ | PROT_WRITE,
                     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
                break;   /* cannot absorb it: fall through to the default */
            __atomic_store_n(&s->hit, 1, __ATOMIC_RELEASE);
            return;
        }
    }
    if (otp_guard_prev.sa_flags & SA_SIGINFO) {
        if (otp_guard_prev.sa_sigaction != NULL) {
            otp_guard_prev.sa_sigaction(sig, si, ctx);
            return;
        }
    } else if (otp_guard_prev.sa_handler != SIG_DFL && otp_guard_prev.sa_handler != SIG_IGN) {
        otp_guard_prev.sa_handler(sig);
        return;
    }
    /* default action: the faulting access is retried and kills the process */
    signal(SIGBUS, SIG_DFL);
}

/* Install the handler unless it is already the current one (something such
 * as faulthandler.enable() may have replaced it since): 0 or -1. */
static int otp_guard_install(void) {
    struct sigaction cur, sa;
    if (sigaction(SIGBUS, NULL, &cur) != 0)
        return -1;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == otp_guard_handler)
        return 0;
    otp_guard_page = (uintptr_t)sysconf(_SC_PAGESIZE);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = otp_guard_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    otp_guard_prev = cur;
    return sigaction(SIGBUS, &sa, NULL);
}

/* Register [addr, addr + len): a slot index, or -1 when the table is full
 * (the mapping is then unguarded, as before this guard existed). */
static int otp_guard_register(const void *addr, size_t len) {
    int i;
    for (i = 0; i < OTP_GUARD_SLOTS; i++) {
        otp_guard_slot *s = &otp_guard_slots[i];
        int expected = 0;
        /* claim with a sentinel (2) so two registering threads never share */
        if (__atomic_compare_exchange_n(&s->used, &expected, 2, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            s->start = (uintptr_t)addr;
            s->end = (uintptr_t)addr + len;
            __atomic_store_n(&s->hit, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&s->used, 1, __ATOMIC_RELEASE);
            return i;
        }
    }
    return -1;
}

static int otp_guard_hit(int slot) {
    return slot >= 0 && __atomic_load_n(&otp_guard_slots[slot].hit, __ATOMIC_ACQUIRE);
}

static void otp_guard_release(int slot) {
    if (slot >= 0)
        __atomic_store_n(&otp_guard_slots[slot].used, 0, __ATOMIC_RELEASE);
}

#endif
