"""Event-time windows over batch columns: tumbling, hopping (sliding) and
session (gap) windows, with a watermark and allowed lateness.

Items carry their own time (a span's end time).  The watermark says "items
older than this are not expected any more": it is the newest item time
seen (never past ``now + max_clock_skew``) or ``now - idle`` when nothing
newer arrives, minus ``delay``.  A window ``[start, end)`` is emitted once
the watermark passes ``end + allowed_lateness`` and is then closed: an item
that would belong to it afterwards is counted as late and dropped, never
folded into a window that was already reported.  Items stamped further
than ``max_clock_skew`` ahead of the sidecar's clock are counted as
``future`` and dropped, so a producer with a wrong clock cannot hold
windows open (and memory) for hours.

Per window and group: count, errors, sum/min/max of the value (span
duration), and a mergeable quantile sketch (sketch.py).  Everything is
computed with numpy over the batch: items are put into windows by
arithmetic on their times, then counted with ``bincount`` per group.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .groups import GroupTable
from .sketch import GroupSketch, Mapping

QUANTILES = (0.5, 0.95, 0.99)
_I64_MIN = -(1 << 63)


@dataclass(frozen=True)
class WindowSpec:
    """``kind`` tumbling: ``size``; hopping: ``size`` every ``step``;
    session: a new window after a ``gap`` without items (per group)."""
    name: str
    kind: str
    size_ns: int = 0
    step_ns: int = 0
    gap_ns: int = 0

    @property
    def span_ns(self) -> int:
        """How long a window can stay open, for expiry checks."""
        return self.gap_ns * 4 if self.kind == "session" else self.size_ns


@dataclass
class WindowResult:
    """One closed window instance per row (for sessions, one per session)."""
    window: str
    kind: str
    start: np.ndarray      # int64 ns
    end: np.ndarray        # int64 ns
    group: np.ndarray      # int64 group ids
    count: np.ndarray
    errors: np.ndarray
    sum: np.ndarray
    min: np.ndarray
    max: np.ndarray
    quantiles: np.ndarray  # rows x len(QUANTILES)

    def __len__(self) -> int:
        return len(self.group)

    @property
    def error_rate(self) -> np.ndarray:
        return np.divide(self.errors, self.count, out=np.zeros(len(self)), where=self.count > 0)

    @property
    def throughput(self) -> np.ndarray:
        """Items per second of window."""
        secs = (self.end - self.start) / 1e9
        return np.divide(self.count, secs, out=np.zeros(len(self)), where=secs > 0)

    @property
    def avg(self) -> np.ndarray:
        return np.divide(self.sum, self.count, out=np.zeros(len(self)), where=self.count > 0)


class Cells:
    """count/errors/sum/min/max and a sketch per cell id (dense arrays)."""

    def __init__(self, mapping: Mapping, capacity: int = 0):
        self.mapping = mapping
        self.count = np.zeros(capacity)
        self.errors = np.zeros(capacity)
        self.sum = np.zeros(capacity)
        self.min = np.full(capacity, np.inf)
        self.max = np.full(capacity, -np.inf)
        self.sketch = GroupSketch(mapping)

    def _grow(self, n: int) -> None:
        cap = len(self.count)
        if n <= cap:
            return
        extra = max(n - cap, cap, 16)
        self.count = np.concatenate([self.count, np.zeros(extra)])
        self.errors = np.concatenate([self.errors, np.zeros(extra)])
        self.sum = np.concatenate([self.sum, np.zeros(extra)])
        self.min = np.concatenate([self.min, np.full(extra, np.inf)])
        self.max = np.concatenate([self.max, np.full(extra, -np.inf)])

    def add(self, ids, value, err, buckets) -> None:
        if not len(ids):
            return
        self._grow(int(ids.max()) + 1)
        cap = len(self.count)
        self.count += np.bincount(ids, minlength=cap)
        self.errors += np.bincount(ids, weights=err, minlength=cap)
        self.sum += np.bincount(ids, weights=value, minlength=cap)
        np.minimum.at(self.min, ids, value)
        np.maximum.at(self.max, ids, value)
        self.sketch.add(ids, value, buckets=buckets)

    @staticmethod
    def merged(parts: list["Cells"], mapping: Mapping) -> "Cells":
        out = Cells(mapping, max(len(c.count) for c in parts))
        for c in parts:
            n = len(c.count)
            out.count[:n] += c.count
            out.errors[:n] += c.errors
            out.sum[:n] += c.sum
            np.minimum(out.min[:n], c.min, out=out.min[:n])
            np.maximum(out.max[:n], c.max, out=out.max[:n])
            out.sketch.merge(c.sketch)
        return out

    def merge_cell(self, dst: int, src: int) -> None:
        self.count[dst] += self.count[src]
        self.errors[dst] += self.errors[src]
        self.sum[dst] += self.sum[src]
        self.min[dst] = min(self.min[dst], self.min[src])
        self.max[dst] = max(self.max[dst], self.max[src])
        self.count[src] = self.errors[src] = self.sum[src] = 0
        self.min[src], self.max[src] = np.inf, -np.inf
        other = GroupSketch(self.mapping)
        other.merge(self.sketch)
        m = np.arange(len(self.count), dtype=np.int64)
        m[src] = dst
        self.sketch = GroupSketch(self.mapping)
        self.sketch.merge(other, m)

    def result(self, name, kind, ids, start, end, group) -> WindowResult:
        return WindowResult(name, kind, start, end, group, self.count[ids].copy(),
                            self.errors[ids].copy(), self.sum[ids].copy(), self.min[ids].copy(),
                            self.max[ids].copy(), self.sketch.quantiles(ids, QUANTILES))

    def nbytes(self) -> int:
        return 5 * self.count.nbytes + self.sketch.nbytes()


class FixedWindows:
    """Tumbling (step == size) and hopping windows, built from panes: items
    are added once, to the pane (``step`` long) holding their time; a
    window is the exact merge of its ``size / step`` panes when it closes
    (the sketches are mergeable), so a hopping window costs one add per
    item, not one per window covering it."""

    def __init__(self, spec: WindowSpec, mapping: Mapping, lateness_ns: int):
        self.spec, self.mapping, self.lateness = spec, mapping, lateness_ns
        self.size = spec.size_ns
        self.step = spec.step_ns or spec.size_ns
        self.panes: dict[int, Cells] = {}
        self.closed_end = _I64_MIN     # windows ending at or before this were emitted
        self.late = 0

    @property
    def open(self) -> dict[int, Cells]:
        return self.panes

    def add(self, gids, t, value, err, buckets, batch=None) -> None:
        step = self.step
        p = (t // step) * step
        lo, hi = int(p.min()), int(p.max())
        if lo + step > self.closed_end and lo == hi:      # the usual batch: one pane, nothing late
            self._pane(lo).add(gids, value, err, buckets)
            return
        # late: the item's first window (ending at pane + step) was emitted;
        # it still counts in its windows that are open, if any
        self.late += int((p + step <= self.closed_end).sum())
        use = p + self.size > self.closed_end
        if not use.any():
            return
        lo, hi = int(p[use].min()), int(p[use].max())
        starts = range(lo, hi + step, step) if (hi - lo) // step < 64 else np.unique(p[use]).tolist()
        for s in starts:
            m = use & (p == s)
            if m.any():
                self._pane(s).add(gids[m], value[m], err[m], buckets[m])

    def _pane(self, start: int) -> Cells:
        c = self.panes.get(start)
        if c is None:
            c = self.panes[start] = Cells(self.mapping)
        return c

    def advance(self, watermark: int) -> list[WindowResult]:
        horizon = watermark - self.lateness
        size, step = self.size, self.step
        ends = sorted({p + k * step for p in self.panes for k in range(1, size // step + 1)
                       if self.closed_end < p + k * step <= horizon})
        out = []
        for end in ends:
            panes = [self.panes[p] for p in range(end - size, end, step) if p in self.panes]
            cells = panes[0] if len(panes) == 1 else Cells.merged(panes, self.mapping)
            ids = np.flatnonzero(cells.count > 0)
            n = len(ids)
            if n:
                out.append(cells.result(self.spec.name, self.spec.kind, ids, np.full(n, end - size, np.int64),
                                        np.full(n, end, np.int64), ids))
        for p in [p for p in self.panes if p + size <= horizon]:
            del self.panes[p]             # no window still to come needs it
        self.closed_end = max(self.closed_end, horizon)
        return out

    def drop_groups(self, gids) -> None:
        for cells in self.panes.values():
            cells.sketch.drop_groups(gids)

    def nbytes(self) -> int:
        return sum(c.nbytes() for c in self.panes.values())


class SessionWindows:
    """Per group, items less than ``gap`` apart share a session; a session
    is the window ``[first item, last item + gap)``."""

    def __init__(self, spec: WindowSpec, mapping: Mapping, lateness_ns: int):
        self.spec, self.gap, self.lateness = spec, spec.gap_ns, lateness_ns
        self.cells = Cells(mapping)
        self.s_group = np.zeros(0, np.int64)
        self.s_first = np.zeros(0, np.int64)
        self.s_last = np.zeros(0, np.int64)
        self.alive = np.zeros(0, bool)
        self.cur = np.zeros(0, np.int64)         # per group: its latest session, or -1
        self.n = 0
        self.horizon = _I64_MIN
        self.late = 0

    def _new(self, group: int, first: int, last: int) -> int:
        sid = self.n
        self._room(sid + 1)
        self.s_group[sid], self.s_first[sid], self.s_last[sid] = group, first, last
        self.alive[sid] = True
        self.n += 1
        return sid

    def _cur(self, n: int) -> None:
        if n > len(self.cur):
            self.cur = np.concatenate([self.cur, np.full(max(n - len(self.cur), 64), -1, np.int64)])

    def add(self, gids, t, value, err, buckets, batch=None) -> None:
        if batch is not None and int(t.max()) - int(t.min()) <= self.gap:
            inv, ug = batch
            if len(np.unique(ug)) == len(ug):      # no two batch groups in one (overflow) group
                return self._add_short(gids, t, value, err, buckets, inv, ug)
        # general case: sort by group and time, split where the gap is exceeded
        order = np.lexsort((t, gids))
        g, ts = gids[order], t[order]
        brk = np.ones(len(ts), dtype=bool)
        brk[1:] = (g[1:] != g[:-1]) | (ts[1:] - ts[:-1] > self.gap)
        seg_at = np.flatnonzero(brk)
        seg_of = np.cumsum(brk) - 1
        seg_end_at = np.append(seg_at[1:], len(ts)) - 1
        seg_sid = np.array([self._assign(int(g[a]), int(ts[a]), int(ts[b]), b - a + 1)
                            for a, b in zip(seg_at.tolist(), seg_end_at.tolist())], np.int64)
        sid_items = seg_sid[seg_of]
        keep = sid_items >= 0
        o = order[keep]
        self.cells.add(sid_items[keep], value[o], err[o], buckets[o])

    def _add_short(self, gids, t, value, err, buckets, inv, ug) -> None:
        """A batch shorter than the gap: one segment per group, assigned
        with numpy; only segments that do not simply extend the group's
        latest session or start a new one after it take the Python path."""
        u = len(ug)
        lo = np.full(u, np.iinfo(np.int64).max)
        hi = np.full(u, np.iinfo(np.int64).min)
        np.minimum.at(lo, inv, t)
        np.maximum.at(hi, inv, t)
        present = hi >= lo
        self._cur(int(ug.max()) + 1)
        cur = self.cur[ug]
        has = cur >= 0
        c = np.where(has, cur, 0)
        first, last = self.s_first[:self.n], self.s_last[:self.n]
        if self.n:
            extend = present & has & (lo >= first[c]) & (lo <= last[c] + self.gap)
            after = present & (~has | (lo > last[c] + self.gap))
        else:
            extend, after = np.zeros(u, bool), present.copy()
        fresh = after & (hi + self.gap > self.horizon)
        seg_sid = np.full(u, -1, np.int64)
        if extend.any():
            e = c[extend]
            self.s_last[e] = np.maximum(self.s_last[e], hi[extend])
            seg_sid[extend] = e
        k = int(fresh.sum())
        if k:
            self._room(self.n + k)
            sids = np.arange(self.n, self.n + k)
            self.s_group[sids], self.s_first[sids], self.s_last[sids] = ug[fresh], lo[fresh], hi[fresh]
            self.alive[sids] = True
            self.n += k
            seg_sid[fresh] = sids
            self.cur[ug[fresh]] = sids
        counts = np.bincount(inv, minlength=u)
        self.late += int(counts[after & ~fresh].sum())
        for j in np.flatnonzero(present & ~extend & ~after).tolist():
            seg_sid[j] = self._assign(int(ug[j]), int(lo[j]), int(hi[j]), int(counts[j]))
        sid_items = seg_sid[inv]
        keep = sid_items >= 0
        if keep.all():
            self.cells.add(sid_items, value, err, buckets)
        else:
            self.cells.add(sid_items[keep], value[keep], err[keep], buckets[keep])

    def _room(self, n: int) -> None:
        if n > len(self.alive):
            extra = max(n - len(self.alive), len(self.alive), 64)
            self.s_group = np.concatenate([self.s_group, np.zeros(extra, np.int64)])
            self.s_first = np.concatenate([self.s_first, np.zeros(extra, np.int64)])
            self.s_last = np.concatenate([self.s_last, np.zeros(extra, np.int64)])
            self.alive = np.concatenate([self.alive, np.zeros(extra, bool)])

    def _assign(self, grp: int, lo: int, hi: int, count: int) -> int:
        """The session for a segment of group ``grp`` from ``lo`` to ``hi``
        (merging sessions it bridges), or -1 if it is late."""
        opened = np.flatnonzero(self.alive[:self.n] & (self.s_group[:self.n] == grp))
        near = [int(x) for x in opened
                if lo <= self.s_last[x] + self.gap and hi >= self.s_first[x] - self.gap]
        self._cur(grp + 1)
        if near:
            sid = near[0]
            for other in near[1:]:       # an item bridged two sessions
                self.cells.merge_cell(sid, other)
                self.s_first[sid] = min(self.s_first[sid], self.s_first[other])
                self.s_last[sid] = max(self.s_last[sid], self.s_last[other])
                self.alive[other] = False
                if self.cur[grp] == other:
                    self.cur[grp] = sid
            self.s_first[sid] = min(self.s_first[sid], lo)
            self.s_last[sid] = max(self.s_last[sid], hi)
        elif hi + self.gap <= self.horizon:
            self.late += count            # its session would be closed already
            return -1
        else:
            sid = self._new(grp, lo, hi)
        c = self.cur[grp]
        if c < 0 or self.s_last[sid] >= self.s_last[c]:
            self.cur[grp] = sid
        return sid

    def advance(self, watermark: int) -> list[WindowResult]:
        self.horizon = max(self.horizon, watermark - self.lateness)
        n = self.n
        done = np.flatnonzero(self.alive[:n] & (self.s_last[:n] + self.gap <= self.horizon))
        if not len(done):
            return []
        res = self.cells.result(self.spec.name, "session", done, self.s_first[done].copy(),
                                self.s_last[done] + self.gap, self.s_group[done].copy())
        self.alive[done] = False
        closed = np.zeros(max(self.n, 1), bool)
        closed[done] = True
        hit = self.cur >= 0
        self.cur[hit & closed[np.where(hit, self.cur, 0)]] = -1
        self._compact()
        return [res]

    def _compact(self) -> None:
        """Renumber the open sessions from 0 so memory follows open
        sessions, not every session ever seen."""
        keep = np.flatnonzero(self.alive[:self.n])
        cells = Cells(self.cells.mapping, len(keep))
        for name in ("count", "errors", "sum", "min", "max"):
            getattr(cells, name)[:] = getattr(self.cells, name)[keep]
        remap = np.zeros(max(len(self.cells.count), self.n, 1), np.int64)
        remap[keep] = np.arange(len(keep))
        old = self.cells.sketch
        old.drop_groups(np.flatnonzero(~np.isin(np.arange(len(remap)), keep)))
        cells.sketch.merge(old, remap)
        self.cells = cells
        hit = self.cur >= 0
        self.cur[hit] = remap[self.cur[hit]]
        self.s_group = self.s_group[keep].copy()
        self.s_first = self.s_first[keep].copy()
        self.s_last = self.s_last[keep].copy()
        self.alive = np.ones(len(keep), bool)
        self.n = len(keep)

    def drop_groups(self, gids) -> None:
        pass   # expiry waits longer than any session can stay open

    def nbytes(self) -> int:
        return self.cells.nbytes() + 25 * len(self.alive)


@dataclass
class StreamConfig:
    windows: list[WindowSpec]
    allowed_lateness_ns: int = 5_000_000_000
    delay_ns: int = 1_000_000_000
    idle_ns: int = 0
    max_clock_skew_ns: int = 60_000_000_000
    group_limit: int = 2000
    group_expiry_ns: int = 600_000_000_000
    relative_accuracy: float = 0.01


class StreamAggregator:
    """Several window specs over one group table."""

    def __init__(self, cfg: StreamConfig):
        self.cfg = cfg
        self.mapping = Mapping(cfg.relative_accuracy)
        self.groups = GroupTable(cfg.group_limit, cfg.group_expiry_ns)
        self.windows = [SessionWindows(w, self.mapping, cfg.allowed_lateness_ns) if w.kind == "session"
                        else FixedWindows(w, self.mapping, cfg.allowed_lateness_ns) for w in cfg.windows]
        self.max_seen = _I64_MIN
        self.future = 0
        self.items = 0

    def add(self, keys, attributes, inverse, t, value, err, now_ns: int, codes=None) -> None:
        """One batch: ``keys[inverse[i]]`` is item i's group key (the
        batch's distinct keys; ``attributes(j)`` builds key j's dict),
        ``t`` event times (ns), ``value`` the measured value, ``err`` 1.0
        for an error item; ``codes``: see GroupTable.ids."""
        if not len(t):
            return
        t = np.asarray(t, np.int64)
        inverse = np.asarray(inverse, np.int64).reshape(-1)
        ok = t <= now_ns + self.cfg.max_clock_skew_ns
        if not ok.all():
            self.future += int((~ok).sum())
            t, inverse, value, err = t[ok], inverse[ok], value[ok], err[ok]
            if not len(t):
                return
        counts = np.bincount(inverse, minlength=len(keys))
        ug = self.groups.ids(keys, attributes, counts, now_ns, codes)
        gids = ug[inverse]
        value = np.asarray(value, np.float64)
        err = np.asarray(err, np.float64)
        buckets = self.mapping.index(value)   # once for every window
        for w in self.windows:
            w.add(gids, t, value, err, buckets, (inverse, ug))
        self.max_seen = max(self.max_seen, int(t.max()))
        self.items += len(t)

    def watermark(self, now_ns: int) -> int:
        return max(self.max_seen, now_ns - self.cfg.idle_ns) - self.cfg.delay_ns

    def advance(self, now_ns: int) -> list[WindowResult]:
        wm = self.watermark(now_ns)
        out = [r for w in self.windows for r in w.advance(wm) if len(r)]
        gone = self.groups.expire(now_ns)
        if gone:
            for w in self.windows:
                w.drop_groups(gone)
        return out

    @property
    def late(self) -> int:
        return sum(w.late for w in self.windows)

    def nbytes(self) -> int:
        return sum(w.nbytes() for w in self.windows) + self.groups.last_seen.nbytes
