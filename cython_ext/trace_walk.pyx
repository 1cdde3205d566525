# cython: language_level=3, cdivision=True
"""The critical-path walk of ``otelplug.traces.critical_path`` in C: the
same definition and the same steps as ``PathWalker.walk`` (its pure-Python
reference, which tests hold this to), for every root of a forest at once.

Inputs are the walker's sorted children (CSR: ``kids[lo[s]:hi[s]]`` are the
children of ``s`` in the order the definition picks from, ``ends`` their
window ends), the windows and the parents.  ``hi`` is consumed (children
are visited once); pass a copy.
"""
import numpy as np

from libc.stdint cimport int64_t


cdef inline Py_ssize_t _rightmost_le(const int64_t[:] ends, int64_t t, Py_ssize_t lo,
                                     Py_ssize_t hi) noexcept nogil:
    # the last index in [lo, hi) whose end is <= t, or lo - 1
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if ends[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


def walk_all(const int64_t[:] lo, int64_t[:] hi, const int64_t[:] kids, const int64_t[:] ends,
             const int64_t[:] starts, const int64_t[:] wends, const int64_t[:] parent,
             const int64_t[:] roots):
    """(segments as an (m, 3) int64 array of span, start, end; per root the
    offset of its first segment, plus the total, as an int64 array)."""
    cdef Py_ssize_t n = parent.shape[0], nroots = roots.shape[0]
    cdef Py_ssize_t cap = 2 * n + 2 * nroots + 2
    seg_arr = np.empty((cap, 3), np.int64)
    bounds_arr = np.zeros(nroots + 1, np.int64)
    cursor_arr = np.empty(max(n, 1), np.int64)
    cdef int64_t[:, :] seg = seg_arr
    cdef int64_t[:] bounds = bounds_arr
    cdef int64_t[:] cursor = cursor_arr
    cdef Py_ssize_t m = 0, k, j
    cdef int64_t s, c, t, ce, root
    with nogil:
        for k in range(nroots):
            root = roots[k]
            if root >= 0:
                cursor[root] = wends[root]
                s = root
                while True:
                    t = cursor[s]
                    j = _rightmost_le(ends, t, lo[s], hi[s])
                    if j >= lo[s]:
                        c = kids[j]
                        hi[s] = j
                        ce = ends[j]
                        if t > ce:
                            seg[m, 0] = s; seg[m, 1] = ce; seg[m, 2] = t
                            m += 1
                        cursor[s] = starts[c]
                        cursor[c] = ce
                        s = c
                    else:
                        if t > starts[s]:
                            seg[m, 0] = s; seg[m, 1] = starts[s]; seg[m, 2] = t
                            m += 1
                        if s == root:
                            break
                        s = parent[s]
            bounds[k + 1] = m
    return seg_arr[:m], bounds_arr
