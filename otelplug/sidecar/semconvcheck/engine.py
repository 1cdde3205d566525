"""The batch checker behind the ``semconv`` processor and the
``semconv_router`` connector.

A registry is resolved once per process (``config.registry_for``: cached by
path and the files' mtimes, so validating a config and starting the sidecar
load it once) and compiled into a :class:`~otelplug.semconv.livecheck.LiveChecker`.
Checking a batch then costs, per span, a native hash and a hash-table
lookup (per log record or metric, the codec's decode plus a dict lookup):

Span shapes
    ``otelplug._ext.span_shape.span_shapes`` reads each span record's bytes
    and returns one 64-bit hash of exactly what the shape key below holds
    (``shapes`` is its pure-Python reference; ``span_key`` is the
    key it stands for).  A native table maps hash -> verdict index; per
    batch only spans whose hash is new are decoded - one per new hash, in
    record order - and go through the shape cache below, which records the
    hash if it cached the verdict.  Spans are also decoded when annotated or
    turned into finding logs.  Hash 0 (a corrupt record, or a map where an
    enum value belongs) means: decode and check that span alone, as before.
    The hash is keyed by a per-engine random seed; a hit is trusted (see
    ``shapes`` for the collision odds).  The table holds at most
    ``4 * max_shapes`` hashes, then starts over.  Without the extension (or
    with ``OTELPLUG_PURE_PYTHON``) every span is decoded and keyed here.

Shape cache
    The findings of a span depend only on its name, kind, the attribute
    *keys*, the value *types* (plus element types of arrays), the values of
    enum attributes, and the same for its events and links.  That tuple is
    the item's *shape*; live traffic repeats a few shapes over and over.
    Level 1 is keyed by ``(name, kind, keys, types)`` - built with C-level
    ``tuple()``/``map(type, ...)``, no Python loop per attribute.  A level-1
    entry knows which of its keys are enums or arrays; if there are none it
    holds the verdict itself, otherwise a level-2 dict keyed by those values
    holds one verdict per variant.  Spans with events or links add a full
    signature of those to level 1 (they are rarer).  Logs are keyed by
    ``(event_name, keys, types)``, metrics by ``(name, instrument, unit)``
    and each data point by ``(metric name, keys, types)`` the same way.
    Both levels are bounded (``max_shapes``, ``max_variants``); past the
    bound a shape is checked uncached, never wrongly.

Verdicts
    A cache entry is a :class:`Verdict`: the findings, the action the
    configured levels give (pass < annotate < route < drop: the strongest
    wins), the annotation, the self-metric label sets, and the statistics
    calls the check made (``StatsRecorder``).  Per batch the verdicts are
    counted and each distinct one is applied ``n`` times to the statistics
    and the counters: their cost is per distinct shape, not per item (and
    the statistics part is one numpy add per batch, folded into
    ``LiveCheckStats`` when read - see ``_apply_counts``).

Resources
    Each resource definition (its content key) is checked once per
    component lifetime, when first seen.  Resource findings are counted and
    reported but do not decide an item's action.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from otelplug import codec
from otelplug.codec import model, views
from otelplug.codec import types as wire
from otelplug import implementation
from otelplug.semconv.livecheck import LEVEL_RANK, LiveChecker, infer_type
from otelplug.semconv.stats import LiveCheckStats, StatsRecorder

from otelplug.codec.recordset import RecordSet
from .config import ACTIONS, ANNOTATE, PASS, ROUTE, SemconvConfig, registry_for
from .findings import (_SEVERITY, FINDING_EVENT, FINDINGS_ATTRIBUTE, LEVEL_ATTRIBUTE, Verdict,
                       _attr_value, _subject)

if implementation.use_compiled():
    from otelplug._ext import span_shape as _span_shape
else:  # the reference: spans are keyed after decoding, slowly
    _span_shape = None

SPAN_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_INSTRUMENT = {(wire.M_GAUGE, False): "gauge", (wire.M_GAUGE, True): "gauge",
               (wire.M_SUM, True): "counter", (wire.M_SUM, False): "updowncounter",
               (wire.M_HISTOGRAM, False): "histogram", (wire.M_HISTOGRAM, True): "histogram",
               (wire.M_EXP_HISTOGRAM, False): "histogram", (wire.M_EXP_HISTOGRAM, True): "histogram"}


class _Shape:
    __slots__ = ("plain", "enum_keys", "array_keys", "variants")

    def __init__(self, enum_keys, array_keys):
        self.plain = None
        self.enum_keys = enum_keys
        self.array_keys = array_keys
        self.variants = {} if (enum_keys or array_keys) else None


# ------------------------------------------------------------------ engine

class Engine:
    def __init__(self, config: SemconvConfig, telemetry, component: str):
        self.config = config
        self.component = component
        self.registry = registry_for(config.registry)
        self._stats = LiveCheckStats(self.registry)
        self.checker = LiveChecker(self.registry)
        self.enums = self.checker.enum_attributes
        self.action_codes = config.actions.codes()
        self.annotating = any(c in (ANNOTATE, ROUTE) for c in self.action_codes.values())
        self.acting = any(c != PASS for c in self.action_codes.values())
        self.lock = threading.Lock()
        self._l1: dict = {}
        self._metric_heads: dict = {}
        self._resources: dict[int, Verdict | None] = {}
        self._resource_attrs: dict[int, dict] = {}
        # spans: native shape hash -> verdict index (see "Span shapes" above)
        self._native = _span_shape if codec.default_impl().name == "cython" else None
        if self._native is not None:
            seed = int.from_bytes(os.urandom(8), "little")
            self._keyset = self._native.KeySet(self.enums, seed)
            self._table = self._native.ShapeTable(1024)
            self._table_cap = 4 * config.max_shapes
        self._vlist: list[Verdict] = []
        self._vindex: dict[Verdict, int] = {}
        self._vaction = np.zeros(64, np.int8)
        # statistics not applied yet: verdict -> items (see _apply_counts)
        self._pending: dict[Verdict, int] = {}
        # finding group (id, level, signal, subject) -> an example span (_note_example)
        self.finding_examples: dict[tuple, dict] = {}
        self._exampled: set[int] = set()
        reg = self.registry
        self._label_names = (set(reg.attributes) | set(reg.metrics) | set(reg.events)
                             | set(reg.spans))
        self._other_names: set[str] = set()
        # self-metrics
        self._findings = telemetry.counter(
            "semconv_findings", "Semantic-convention findings in checked telemetry",
            ("component", "id", "level", "signal", "attribute_or_metric"))
        self._items = telemetry.counter(
            "semconv_items", "Items checked against the registry, by the action applied",
            ("component", "otel_signal", "action"))
        self._uncached = telemetry.counter(
            "semconv_uncached_checks", "Item shapes checked without the shape cache (cache bounds reached)",
            ("component",))
        self._coverage = telemetry.gauge(
            "semconv_registry_coverage", "Fraction of the registry seen in checked telemetry, per kind",
            ("component", "kind"))
        self._ns_coverage = telemetry.gauge(
            "semconv_namespace_coverage", "Fraction of a namespace's registry attributes seen",
            ("component", "namespace"))
        self._entities = telemetry.gauge(
            "semconv_entities", "Samples checked so far by type (live-check's total_entities_by_type)",
            ("component", "type"))
        telemetry.on_collect(self._refresh_gauges)

    # -- labels ---------------------------------------------------------------
    def labels(self, f, signal: str) -> tuple:
        s = _subject(f)
        if s not in self._label_names and s not in self._other_names:
            if len(self._other_names) < self.config.label_limit:
                self._other_names.add(s)
            else:
                s = "other"
        return (f.id, f.level, f.signal_type or signal, s)

    # -- statistics -----------------------------------------------------------
    @property
    def stats(self) -> LiveCheckStats:
        """The live-check statistics, up to date."""
        with self.lock:
            self._flush_stats()
            return self._stats

    def stats_dict(self) -> dict:
        with self.lock:
            self._flush_stats()
            return self._stats.to_dict()

    def _refresh_gauges(self) -> None:
        d = self.stats_dict()
        c = self.component
        for kind, cov in d["coverage_by_signal"].items():
            self._coverage.set(cov["coverage"], component=c, kind=kind)
        for ns, cov in d["coverage_by_namespace"].items():
            self._ns_coverage.set(cov["coverage"], component=c, namespace=ns)
        for typ, n in d["total_entities_by_type"].items():
            self._entities.set(n, component=c, type=typ)

    def _verdict(self, run, signal: str) -> Verdict:
        rec = StatsRecorder()
        self.checker.stats = rec
        try:
            findings = run()
        finally:
            self.checker.stats = None
        return Verdict(findings, rec.calls, self, signal)

    def _apply(self, verdicts) -> None:
        """Statistics and counters for a batch's verdicts (per distinct one)."""
        self._apply_counts(Counter(verdicts).items())

    def _apply_counts(self, pairs) -> None:
        """Statistics and counters for (verdict, number of items) pairs.

        The findings counters are updated at once, one update per label
        set (their label tuples are built once per verdict, ``_found``).
        The statistics updates (``LiveCheckStats.replay(calls, n)``) wait
        in ``_pending`` (verdict -> items) and are applied, ``n`` at a
        time, whenever the statistics are read (``stats_dict``, ``stats``,
        the gauges at each scrape) or ``_pending`` reaches 1024 verdicts:
        exact at every read, and per batch a dict update per distinct
        verdict."""
        pend = self._pending
        found = []
        for v, n in pairs:
            if v.calls:
                pend[v] = pend.get(v, 0) + n
            f = v.found
            if f is None:
                f = self._found(v)
            if f:
                found.append((f, n))
        if found:
            self._findings.add_many((key, inc * n) for keys, n in found for key, inc in keys)
        if len(pend) >= 1024:
            self._flush_stats()

    def _flush_stats(self) -> None:
        """Apply the pending statistics (see ``_apply_counts``)."""
        if self._pending:
            replay = self._stats.replay
            for v, n in self._pending.items():
                replay(v.calls, n)
            self._pending.clear()

    def _found(self, v: Verdict) -> tuple:
        """``v``'s findings counter updates per item: ((label tuple, n), ...)."""
        names = self._findings.labelnames       # the family's own label tuple
        found: dict = {}
        for lab in v.labels:
            d = dict(component=self.component, id=lab[0], level=lab[1], signal=lab[2],
                     attribute_or_metric=lab[3])
            key = tuple(str(d[n]) for n in names)
            found[key] = found.get(key, 0) + 1
        v.found = tuple(found.items())
        return v.found

    # -- the shape cache ------------------------------------------------------
    def _shape(self, k1, keys, types):
        if len(self._l1) >= self.config.max_shapes:
            self._l1.clear()
            self._uncached.add(1, component=self.component)
        enums = tuple(k for k in keys if k in self.enums)
        arrays = tuple(k for k, t in zip(keys, types) if t is tuple or t is list)
        e = self._l1[k1] = _Shape(enums, arrays)
        return e

    def _lookup(self, e: _Shape, attrs, compute):
        return self._lookup_cached(e, attrs, compute)[0]

    def _attrs_verdict(self, head: tuple, attrs, check, signal: str) -> Verdict:
        """The verdict of a log record or data point: level 1 keyed by
        ``head`` plus its attribute keys and value types, ``check()`` run
        only when no cached verdict fits."""
        keys = tuple(attrs)
        types = tuple(map(type, attrs.values()))
        k1 = (*head, keys, types)
        e = self._l1.get(k1)
        if e is None:
            e = self._shape(k1, keys, types)
        v = e.plain
        if v is None:
            v = self._lookup(e, attrs, lambda: self._verdict(check, signal))
        return v

    def _lookup_cached(self, e: _Shape, attrs, compute) -> tuple[Verdict, bool]:
        """(verdict, whether the cache holds it)."""
        if e.variants is None:
            v = e.plain
            if v is None:
                v = e.plain = compute()
            return v, True
        try:
            vk = self._variant_key(e, attrs)
            v = e.variants.get(vk)
        except TypeError:          # an unhashable value (a map) where an enum belongs
            self._uncached.add(1, component=self.component)
            return compute(), False
        if v is None:
            v = compute()
            if len(e.variants) < self.config.max_variants:
                e.variants[vk] = v
            else:
                self._uncached.add(1, component=self.component)
                return v, False
        return v, True

    def _variant_key(self, e: _Shape, attrs) -> tuple:
        vk = tuple(map(attrs.__getitem__, e.enum_keys))
        if self.checker.constraints:  # a valid constrained value stands for all valid ones
            vk = tuple(map(self.checker.value_class, e.enum_keys, vk))
        if e.array_keys:
            vk += tuple(infer_type(attrs[k]) for k in e.array_keys)
        return vk

    def _full_sig(self, attrs) -> tuple:
        enums = self.enums
        return tuple((k, type(v), v if k in enums else infer_type(v) if type(v) is tuple else None)
                     for k, v in attrs.items())

    # -- signals --------------------------------------------------------------
    def _span_l1(self, s):
        """(level-1 key, keys, types) of a decoded span; None when its
        events or links hold an unhashable value where a value is keyed."""
        a = s.attributes
        keys = tuple(a)
        types = tuple(map(type, a.values()))
        if s.events or s.links:
            try:
                extra = (tuple((e.name, self._full_sig(e.attributes)) for e in s.events),
                         tuple(self._full_sig(lk.attributes) for lk in s.links))
                hash(extra)
            except TypeError:
                return None
            return (s.name, s.kind, keys, types, extra), keys, types
        return (s.name, s.kind, keys, types), keys, types

    def span_key(self, s):
        """The shape cache's whole key of a decoded span: (level-1 key,
        level-2 key or None), or None if it has none (unhashable).  What
        the native shape hash stands for (tests compare the two)."""
        r = self._span_l1(s)
        if r is None:
            return None
        k1, keys, types = r
        e = _Shape(tuple(k for k in keys if k in self.enums),
                    tuple(k for k, t in zip(keys, types) if t is tuple or t is list))
        if e.variants is None:
            return k1, None
        try:
            vk = self._variant_key(e, s.attributes)
            hash(vk)
        except TypeError:
            return None
        return k1, vk

    def span_verdict(self, s) -> tuple[Verdict, bool]:
        """(verdict, whether the shape cache holds it) of one decoded span."""
        r = self._span_l1(s)
        if r is None:
            self._uncached.add(1, component=self.component)
            return self._span_check(s), False
        k1, keys, types = r
        e = self._l1.get(k1)
        if e is None:
            e = self._shape(k1, keys, types)
        if e.plain is not None:
            return e.plain, True
        return self._lookup_cached(e, s.attributes, lambda: self._span_check(s))

    def span_verdicts(self, records: RecordSet, keep):
        """Decoding every span (no native shapes): (actions, (verdict, n)
        pairs, {index: (decoded item, verdict)} where ``keep(verdict)``,
        resource keys)."""
        return self._item_verdicts(records, codec.decode_span, lambda s: self.span_verdict(s)[0],
                                   keep)

    def _item_verdicts(self, records: RecordSet, decode, verdict_of, keep):
        verdicts, kept, rkeys = [], {}, set()
        for i, p in enumerate(records.payloads()):
            item = decode(p)
            v = verdict_of(item)
            if v.findings and id(v) not in self._exampled:
                self._note_example(v, item, records)
            verdicts.append(v)
            if keep(v):
                kept[i] = (item, v)
            rkeys.add(item.resource_key)
        actions = np.fromiter((v.action for v in verdicts), np.int8, len(verdicts))
        return actions, Counter(verdicts).items(), kept, rkeys

    def _note_example(self, v: Verdict, s, records: RecordSet) -> None:
        """Keep the first span (or log record in a span) seen per finding
        group (id, level, signal, subject) as its example, for the HTTP
        API's findings view and the findings log records; only items of a
        new shape get here."""
        self._exampled.add(id(v))
        if not v.findings or not getattr(s, "span_id", 0) \
                or len(self.finding_examples) >= 4 * self.config.label_limit:
            return
        service = None
        for lab in v.labels:
            if lab not in self.finding_examples:
                if service is None:
                    service = str(self.resource_attributes(s.resource_key, records).get("service.name", ""))
                self.finding_examples[lab] = {"trace_id": format(s.trace_id, "032x"),
                                              "span_id": format(s.span_id, "016x"), "service": service}

    def _vid(self, v: Verdict) -> int:
        """The index of ``v`` in ``_vlist`` (added when new)."""
        i = self._vindex.get(v)
        if i is None:
            i = self._vindex[v] = len(self._vlist)
            self._vlist.append(v)
            if i >= len(self._vaction):
                self._vaction = np.concatenate([self._vaction, np.zeros(len(self._vaction), np.int8)])
            self._vaction[i] = v.action
        return i

    def span_verdicts_native(self, records: RecordSet, keep):
        """``span_verdicts`` with one native hash per span (its shape) and a
        hash table lookup; a span is decoded only if its shape is new (one
        per new shape per batch), its record is corrupt (hash 0: checked
        alone, ``decode_span`` raises as it always did) or ``keep`` wants it."""
        if len(self._table) >= self._table_cap or len(self._vlist) >= self._table_cap:
            self._table.clear()
            self._vlist.clear()
            self._vindex.clear()
        rkeys: set = set()
        hashes, ids, misses = self._table.match(records, self._keyset, rkeys)
        decoded = {}
        if misses:
            self._new_shapes(records, hashes, ids, np.flatnonzero(ids < 0), decoded, rkeys)
        vlist = self._vlist
        pairs = [(vlist[i], n) for i, n in self._native.tally(ids)]
        if any(v.action for v, _n in pairs):
            actions = self._vaction[ids]
        else:
            actions = np.zeros(len(ids), np.int8)
        kept = {}
        wanted = [self._vindex[v] for v, _n in pairs if keep(v)]
        if wanted:
            sel = np.zeros(len(vlist), bool)
            sel[wanted] = True
            decode = codec.decode_span
            for i in np.flatnonzero(sel[ids]).tolist():
                s = decoded.get(i)
                if s is None:
                    s = decode(records.payload(i))
                kept[i] = (s, vlist[ids[i]])
        return actions, pairs, kept, rkeys

    def _new_shapes(self, records, hashes, ids, miss, decoded, rkeys) -> None:
        """Verdicts (and table entries) for the spans at ``miss``, in place
        in ``ids``, checked in record order (the first ``label_limit``
        names seen become label values, as when every span was decoded)."""
        decode = codec.decode_span
        table = self._table
        mh = hashes[miss]
        uniq, first, inverse = np.unique(mh, return_index=True, return_inverse=True)
        work = list(zip(miss[first].tolist(), range(len(uniq))))
        new = np.empty(len(uniq), np.int32)
        if uniq[0] == 0:      # corrupt records and unhashable shapes: each alone
            work = work[1:] + [(i, -1) for i in miss[mh == 0].tolist()]
        work.sort()
        for i, j in work:
            s = decoded[i] = decode(records.payload(i))
            v, cached = self.span_verdict(s)
            self._note_example(v, s, records)
            vid = self._vid(v)
            if j < 0:
                ids[i] = vid
                rkeys.add(s.resource_key)
                continue
            new[j] = vid
            if cached:
                table.add(int(uniq[j]), vid)
        if uniq[0] == 0:
            nz = mh != 0
            ids[miss[nz]] = new[inverse[nz]]
            return
        ids[miss] = new[inverse]

    def _span_check(self, s) -> Verdict:
        events = [{"name": e.name, "attributes": e.attributes} for e in s.events]
        links = [{"attributes": lk.attributes} for lk in s.links]
        kind = SPAN_KINDS.get(s.kind)
        return self._verdict(lambda: self.checker.check_span(s.name, kind, s.attributes, events, links),
                             "span")

    def log_verdicts(self, records: RecordSet, keep):
        """As ``span_verdicts``, for log records."""
        return self._item_verdicts(records, codec.decode_log, self._log_verdict, keep)

    def _log_verdict(self, r) -> Verdict:
        return self._attrs_verdict(
            ("log", r.event_name), r.attributes,
            lambda: self.checker.check_log(r.event_name, r.attributes, r.body), "log")

    def metric_verdicts(self, records: RecordSet):
        """(verdicts per record - each a list: metric then points -, point
        counts, resource keys, decoded metrics)."""
        decode = codec.decode_metric
        heads = self._metric_heads
        per_record, points, rkeys, decoded = [], [], set(), []
        for p in records.payloads():
            m = decode(p)
            instrument = _INSTRUMENT.get((m.kind, bool(m.is_monotonic)))
            hk = (m.name, instrument, m.unit)
            hv = heads.get(hk)
            if hv is None:
                if len(heads) >= self.config.max_shapes:
                    heads.clear()
                hv = heads[hk] = self._verdict(
                    lambda: self.checker.check_metric(m.name, instrument, m.unit), "metric")
            vs = [hv]
            for pt in m.points:
                vs.append(self._attrs_verdict(
                    ("point", m.name), pt.attributes,
                    lambda a=pt.attributes, name=m.name: self.checker.check_data_point(name, a),
                    "metric"))
            per_record.append(vs)
            points.append(len(m.points))
            rkeys.add(m.resource_key)
            decoded.append(m)
        return per_record, np.array(points, dtype=np.int64), rkeys, decoded

    def resource_verdicts(self, records: RecordSet, rkeys) -> list[tuple[int, Verdict]]:
        """Check resources not seen before; returns the new (key, verdict)s."""
        if not self.config.check_resources:
            return []
        out = []
        for key in rkeys:
            if key in self._resources or not key:
                continue
            if len(self._resources) >= self.config.max_shapes:
                self._resources.clear()
                self._resource_attrs.clear()
            payload = records.defs.get(key)
            if payload is None:
                continue
            res = codec.decode_definition(payload)
            if not isinstance(res, model.Resource):
                self._resources[key] = None
                continue
            self._resource_attrs[key] = res.attributes
            v = self._resources[key] = self._verdict(lambda: self.checker.check_resource(res.attributes),
                                                     "resource")
            out.append((key, v))
        return out

    def resource_attributes(self, key: int, records: RecordSet) -> dict:
        attrs = self._resource_attrs.get(key)
        if attrs is None:
            payload = records.defs.get(key)
            res = codec.decode_definition(payload) if payload is not None else None
            attrs = res.attributes if isinstance(res, model.Resource) else {}
        return attrs

    # -- one batch ------------------------------------------------------------
    def evaluate(self, records: RecordSet, want_logs: bool = False) -> "Outcome":
        """Check a batch; annotate what the config says to annotate.
        Thread-safe (one batch at a time per component)."""
        with self.lock:
            return self._evaluate(records, want_logs)

    def _evaluate(self, records: RecordSet, want_logs: bool) -> "Outcome":
        signal = records.signal
        n = len(records)
        logs_src = []
        if signal == "metrics":
            per_record, points, rkeys, decoded = self.metric_verdicts(records)
            flat = [v for vs in per_record for v in vs]
            actions = np.fromiter((max(v.action for v in vs) for vs in per_record), np.int8, n)
            self._apply(flat)
            out = records
            if want_logs:
                logs_src = [(m, v) for m, vs in zip(decoded, per_record) for v in vs if v.findings]
        else:
            annotate = self.annotating

            def keep(v):
                return want_logs and bool(v.findings) or (annotate and bool(v.annotation))

            if signal == "traces":
                if self._native is not None:
                    actions, pairs, kept, rkeys = self.span_verdicts_native(records, keep)
                else:
                    actions, pairs, kept, rkeys = self.span_verdicts(records, keep)
            else:
                actions, pairs, kept, rkeys = self.log_verdicts(records, keep)
            self._apply_counts(pairs)
            points = None
            out = records
            if annotate:
                out = self._annotate(records, kept)
            if want_logs:
                logs_src = [kept[i] for i in sorted(kept) if kept[i][1].findings]
        new_resources = self.resource_verdicts(records, rkeys)
        if new_resources:
            self._apply([v for _k, v in new_resources])
        if signal == "metrics":
            counts = (np.bincount(actions, weights=points, minlength=4).astype(np.int64).tolist()
                      if n else [0] * 4)
        else:
            counts = [0] * 4
            for v, c in pairs:
                counts[v.action] += c
        for code, c in enumerate(counts):
            if c:
                self._items.add(c, component=self.component, otel_signal=signal, action=ACTIONS[code])
        logs = None
        if want_logs:
            logs = self._finding_logs(records, logs_src, new_resources)
        return Outcome(out, actions, points, logs)

    def _annotate(self, records: RecordSet, kept) -> RecordSet:
        from ..rewrite import encode_log, encode_span
        encode = encode_span if records.signal == "traces" else encode_log
        replaced = {}
        for i, (item, v) in kept.items():
            if not v.annotation:
                continue
            item.attributes = dict(item.attributes)
            item.attributes[FINDINGS_ATTRIBUTE] = v.annotation
            item.attributes[LEVEL_ATTRIBUTE] = v.level
            replaced[i] = encode(item)
        if not replaced:
            return records
        mv = memoryview(records.buf)
        parts = []
        for i, (off, ln) in enumerate(zip(records.offsets.tolist(), records.lengths.tolist())):
            parts.append(replaced.get(i) or mv[off:off + ln])
        return RecordSet.from_parts(records.signal, parts, records.defs, records.acks,
                                    records.items)

    # -- findings as log records ----------------------------------------------
    def _finding_logs(self, records: RecordSet, items, new_resources) -> RecordSet | None:
        """Log records shaped like Weaver live-check's finding event, one
        per finding at or above ``findings_log_min_level``."""
        from ..rewrite import encode_log, encode_resource
        min_rank = LEVEL_RANK[getattr(self.config, "findings_log_min_level", "information")]
        if not hasattr(self, "_log_defs"):
            res = model.Resource({"service.name": "otelplug", "otelplug.component": self.component})
            rp = encode_resource(res)
            sp = codec.encode_scope(views.Scope("otelplug.sidecar.semconv"))
            self._log_defs = {codec.definition_key(rp): rp, codec.definition_key(sp): sp}
            self._log_keys = tuple(self._log_defs)
        rkey, skey = self._log_keys
        now = time.time_ns()
        parts = []

        def emit(f, resource_key, trace_id=0, span_id=0, trace_flags=None):
            if LEVEL_RANK[f.level] < min_rank:
                return
            attrs = {"weaver.finding.id": f.id, "weaver.finding.level": f.level,
                     "weaver.finding.sample_type": f.sample_type or "",
                     "weaver.finding.signal_type": f.signal_type or ""}
            if f.signal_name:
                attrs["weaver.finding.signal_name"] = f.signal_name
            for k, val in f.context.items():
                if val is not None:
                    attrs[f"weaver.finding.context.{k}"] = _attr_value(val)
            for k, val in self.resource_attributes(resource_key, records).items():
                attrs[f"weaver.finding.resource_attribute.{k}"] = val
            sev, text = _SEVERITY[f.level]
            parts.append(encode_log(model.LogData(
                time_unix_nano=now, observed_time_unix_nano=now, trace_id=trace_id, span_id=span_id,
                trace_flags=trace_flags, severity_number=sev, severity_text=text,
                event_name=FINDING_EVENT, body=f.message, attributes=attrs,
                resource_key=rkey, scope_key=skey)))

        for key, v in new_resources:
            for f in v.findings:
                emit(f, key)
        for item, v in items:
            tid = getattr(item, "trace_id", 0) or 0
            sid = getattr(item, "span_id", 0) or 0
            flags = getattr(item, "trace_flags", None) if sid else None
            for f in v.findings:
                emit(f, item.resource_key, tid, sid, flags)
        if not parts:
            return None
        return RecordSet.from_parts("logs", parts, dict(self._log_defs))


@dataclass
class Outcome:
    records: RecordSet        # the batch, annotated where configured
    actions: np.ndarray       # int8 per record: PASS, ANNOTATE, ROUTE, DROP
    points: np.ndarray | None  # metrics: data points per record
    logs: RecordSet | None    # findings as log records (when asked for)

    def select(self, mask) -> RecordSet:
        items = int(self.points[mask].sum()) if self.points is not None else None
        return self.records.select(mask, items)
