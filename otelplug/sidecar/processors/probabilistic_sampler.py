"""probabilistic_sampler: the Collector's probabilisticsamplerprocessor.

Configuration and behaviour follow the contrib processor:
``sampling_percentage``, ``hash_seed``, ``mode`` (``hash_seed``,
``proportional``, ``equalizing``), ``fail_closed``, ``sampling_precision``,
and for logs ``attribute_source``, ``from_attribute``, ``sampling_priority``.
As in the Collector's code, an unset ``mode`` means ``hash_seed`` when a
hash seed is set (or logs are sampled by a record attribute) and
``proportional`` otherwise.

Decisions are made for the whole batch at once: the randomness of every
span comes from its trace id column (the low 56 bits, or a vectorised
FNV-1a hash in hash_seed mode), the threshold is one number for the batch,
and ``records.select(mask)`` keeps the sampled spans.  Only spans that
already carry a tracestate, or a ``sampling.priority`` attribute, are
looked at one by one.  Every kept span gets the OTEP 235 threshold in its
tracestate (``ot=th:...``, plus ``rv:...`` in hash_seed mode where the
randomness is not the trace id's), written by splicing the record bytes.
Log records carry the same information as the ``sampling.threshold`` /
``sampling.randomness`` attributes (re-encoded with ``rewrite``).
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Literal

import numpy as np

from otelplug import codec

from ..component import Factory, Kind
from ..helpers.processor import Processor, log
from ..rewrite import rewrite
from ..sampling import otep235 as th
from ..sampling import records as rec
from ..sampling import tracestate as ts
from ..sampling.attributes import key_needle
from ..sampling.hashing import fnv1a32, fnv1a32_bytes, hash_seed_randomness

MODES = ("", "hash_seed", "proportional", "equalizing")
_NUM_HASH_BUCKETS = 0x4000
PRIORITY_KEY = "sampling.priority"
_ALL_RANDOM = th.RANDOMNESS_MASK  # "missing randomness" compares as the maximum


@dataclass
class ProbabilisticSamplerConfig:
    """``sampling_percentage``: the percentage of items kept.

    ``hash_seed``: seeds the FNV hash of hash_seed mode; samplers with the
    same seed decide alike.

    ``mode``: hash_seed, proportional or equalizing (OTEP 235); "" picks
    hash_seed when a seed is set, proportional otherwise.

    ``fail_closed``: drop items whose randomness cannot be read (keep them
    when false).

    ``sampling_precision``: hex digits of the threshold written to tracestate.

    ``attribute_source``: logs: randomness from the trace id, or from the
    record attribute ``from_attribute``.

    ``from_attribute``: logs: the attribute hashed when ``attribute_source``
    is record.

    ``sampling_priority``: logs: an attribute whose value overrides the
    sampling percentage for its record.
    """
    sampling_percentage: float = 0.0
    hash_seed: int = 0
    mode: Literal["", "hash_seed", "proportional", "equalizing"] = ""
    fail_closed: bool = True
    sampling_precision: int = 4
    attribute_source: Literal["traceID", "record"] = "traceID"
    from_attribute: str = ""
    sampling_priority: str = ""

    def validate(self):
        errs = []
        pct = self.sampling_percentage
        if math.isnan(pct) or math.isinf(pct):
            errs.append((("sampling_percentage",), f"sampling rate is invalid: {pct}%"))
        elif pct < 0:
            errs.append((("sampling_percentage",), f"sampling rate is negative: {pct}%"))
        elif 0 < pct / 100 < th.MIN_SAMPLING_PROBABILITY:
            errs.append((("sampling_percentage",), f"sampling rate is too small: {pct}%"))
        if not 0 <= self.hash_seed <= 0xFFFFFFFF:
            errs.append((("hash_seed",), "must be a 32-bit unsigned integer"))
        if self.sampling_precision == 0:
            errs.append((("sampling_precision",), "invalid sampling precision: 0"))
        elif not 1 <= self.sampling_precision <= th.NUM_HEX_DIGITS:
            errs.append((("sampling_precision",),
                         f"sampling precision is too great, should be <= 14: {self.sampling_precision}"))
        return errs

    def effective_mode(self, logs: bool) -> str:
        if self.mode:
            return self.mode
        if self.hash_seed != 0 or (logs and self.attribute_source != "traceID"):
            return "hash_seed"
        return "proportional"


class Decider:
    """The per-item rule of the Collector's ``commonShouldSampleLogic``, in
    scalar form (``decide_one``) and over arrays (``configured``)."""

    def __init__(self, cfg: ProbabilisticSamplerConfig, logs: bool):
        self.cfg = cfg
        self.mode = cfg.effective_mode(logs)
        pct = min(float(np.float32(cfg.sampling_percentage)), 100.0)
        self.never = pct == 0
        ratio = max(pct / 100.0, th.MIN_SAMPLING_PROBABILITY)
        self.ratio = ratio
        self.seed_bytes = struct.pack("<I", cfg.hash_seed)
        if self.never:
            self.threshold = th.NEVER_SAMPLE
        elif self.mode == "hash_seed":
            # the legacy arithmetic: float32 multiply, truncated
            scaled = int(np.float32(pct) * np.float32(_NUM_HASH_BUCKETS / 100.0))
            self.never = scaled == 0
            self.threshold = (th.NEVER_SAMPLE if self.never
                              else (_NUM_HASH_BUCKETS - scaled) << 42)
        else:
            self.threshold = th.probability_to_threshold(ratio, cfg.sampling_precision)

    def decide(self, incoming: int | None) -> int:
        """Threshold for an item whose arriving threshold is ``incoming``."""
        if self.never:
            return th.NEVER_SAMPLE
        if self.mode != "proportional" or incoming is None:
            return self.threshold
        try:
            return th.probability_to_threshold(th.threshold_probability(incoming) * self.ratio,
                                               self.cfg.sampling_precision)
        except th.ProbabilityRangeError:
            return th.NEVER_SAMPLE

    def on_error(self) -> int:
        return th.NEVER_SAMPLE if self.cfg.fail_closed else th.ALWAYS_SAMPLE

    def hash_randomness(self, ids: np.ndarray) -> np.ndarray:
        return hash_seed_randomness(fnv1a32(self.seed_bytes, ids))


def _priority(value) -> int:
    """OpenTracing ``sampling.priority``: 0 -> drop, > 0 -> keep, else defer."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return 0
    if isinstance(value, (int, float)):
        if value == 0:
            return -1
        if value > 0:
            return 1
    return 0


def _final_threshold(incoming: int | None, threshold: int) -> int:
    """``UpdateTValueWithSampling``: a threshold may only rise (probability
    only fall); an arriving larger one stays."""
    if incoming is not None and incoming > threshold:
        return incoming
    return threshold


class ProbabilisticSampler(Processor):
    def __init__(self, settings, config: ProbabilisticSamplerConfig, next_consumer):
        super().__init__(settings, config, next_consumer)
        self.logs = settings.signal == "logs"
        self.decider = Decider(config, self.logs)
        word = "logs" if self.logs else "traces"
        self._count = settings.telemetry.counter(
            f"processor_probabilistic_sampler_count_{word}_sampled",
            f"Count of {word} that were sampled or not", ("processor", "policy", "sampled"))
        self._needle = key_needle(PRIORITY_KEY)

    # -- traces ---------------------------------------------------------------
    def process(self, records):
        if self.logs:
            return self._process_logs(records)
        return self._process_spans(records)

    def _process_spans(self, records):
        d = self.decider
        n = len(records)
        cols = rec.span_columns(records)
        ids = np.zeros((n, 16), np.uint8)
        ids[cols.row] = cols.trace_id
        hash_mode = d.mode == "hash_seed"
        if hash_mode:
            rnd = d.hash_randomness(ids)
            policy = "trace_id_hash"
            error = np.zeros(n, bool)
        else:
            rnd = th.trace_id_randomness(ids)
            policy = "trace_id_w3c"
            error = ~th.trace_id_valid(ids)           # missing randomness
            rnd[error] = _ALL_RANDOM
        if cols.invalid:                              # records the codec could not read
            bad = np.ones(n, bool)
            bad[cols.row] = False
            error |= bad
        thresholds = np.full(n, d.threshold, np.uint64)
        info = rec.tracestate_info(records)
        special = np.flatnonzero(~info.empty | rec.records_containing(records, self._needle))
        # per-span state only for the few that need it
        incoming: dict[int, int | None] = {}
        states: dict[int, ts.OTelState | None] = {}
        forced = {}
        for i in special.tolist():
            st = None
            try:
                st = ts.parse(rec.read_tracestate(records, info, i))
            except ts.TraceStateError as exc:
                log.debug("%s: %s", self.id, exc)
                error[i] = True
                states[i] = None              # left as it is if kept (fail open)
            if st is not None:
                states[i] = st
                if hash_mode:
                    if st.randomness is not None or st.threshold is not None:
                        error[i] = True       # randomness / threshold in use: wrong mode
                else:
                    if st.randomness is not None:
                        rnd[i] = st.randomness
                        error[i] = False
                    if st.threshold is not None and not error[i]:
                        if int(rnd[i]) < st.threshold:   # inconsistent arriving t-value
                            st.threshold = None
                            error[i] = True
                    incoming[i] = st.threshold
                    if not error[i]:
                        thresholds[i] = d.decide(st.threshold)
            p = _priority(self._span_priority(records, i))
            if p:
                forced[i] = th.NEVER_SAMPLE if p < 0 else th.ALWAYS_SAMPLE
        if error.any():
            thresholds[error] = d.on_error()
        for i, t in forced.items():
            thresholds[i] = t
        # the NEVER threshold (2**56) exceeds every 56-bit randomness
        keep = rnd >= thresholds
        self._count_decisions(keep, error, forced, policy)
        if not keep.any():
            return None
        idx = np.flatnonzero(keep)
        kept = records.select(idx)
        kinfo = rec.TraceStateInfo(info.pos[idx], info.size[idx], info.empty[idx])
        return rec.splice_tracestates(kept, kinfo, self._new_tracestates(
            idx, rnd, thresholds, states, incoming, error, hash_mode))

    def _span_priority(self, records, i):
        payload = records.payload(i)
        if self._needle not in bytes(payload):
            return None
        return codec.decode_span(payload).attributes.get(PRIORITY_KEY)

    def _new_tracestates(self, idx, rnd, thresholds, states, incoming, error, hash_mode):
        """Encoded tracestate per kept span.  The common case (no arriving
        tracestate) shares one encoding per threshold value."""
        memo: dict[int, bytes] = {}
        out = []
        thr = thresholds[idx].tolist()
        rv = rnd[idx].tolist() if hash_mode else None
        for j, i in enumerate(idx.tolist()):
            st = states.get(i)
            t = thr[j]
            if st is None and i in states:     # unparseable tracestate: left alone
                out.append(None)
                continue
            if st is None:
                if hash_mode and not error[i]:
                    out.append(rec.encode_nstr(ts.OTelState(t, rv[j]).header()))
                    continue
                enc = memo.get(t)
                if enc is None:
                    enc = memo[t] = rec.encode_nstr(ts.OTelState(t).header())
                out.append(enc)
                continue
            st.threshold = _final_threshold(incoming.get(i), t)
            if hash_mode and not error[i]:
                st.randomness = rv[j]
            out.append(rec.encode_nstr(st.header()))
        return out

    def _count_decisions(self, keep, error, forced, policy):
        lab = {"processor": self.id}
        n_forced = len(forced)
        forced_keep = sum(1 for i in forced if keep[i])
        plain = np.ones(len(keep), bool)
        if forced:
            plain[list(forced)] = False
        missing = error & plain
        normal = plain & ~error
        self._count.add(int(keep[normal].sum()), policy=policy, sampled="true", **lab)
        self._count.add(int((~keep[normal]).sum()), policy=policy, sampled="false", **lab)
        if missing.any():
            self._count.add(int(keep[missing].sum()), policy="missing_randomness", sampled="true", **lab)
            self._count.add(int((~keep[missing]).sum()), policy="missing_randomness", sampled="false",
                            **lab)
        if n_forced:
            self._count.add(forced_keep, policy="sampling_priority", sampled="true", **lab)
            self._count.add(n_forced - forced_keep, policy="sampling_priority", sampled="false", **lab)

    # -- logs -----------------------------------------------------------------
    def _process_logs(self, records):
        """Logs are decoded one by one (their volume is lower and the
        randomness may come from any attribute)."""
        d, cfg = self.decider, self.config
        keep = np.zeros(len(records), bool)
        edits = {}
        lab = {"processor": self.id}
        for i, payload in enumerate(records.payloads()):
            r = codec.decode_log(payload)
            attrs = r.attributes or {}
            rnd, policy, err, th_in = None, "missing_randomness", False, None
            has_rv, has_th = "sampling.randomness" in attrs, "sampling.threshold" in attrs
            try:
                if has_th:
                    th_in = th.parse_tvalue(str(attrs["sampling.threshold"]))
                rv_in = th.parse_rvalue(str(attrs["sampling.randomness"])) if has_rv else None
            except ValueError:
                err, th_in, rv_in = True, None, None
            use_tid = cfg.attribute_source == "traceID" and r.trace_id
            if d.mode == "hash_seed":
                if use_tid:
                    rnd, policy = self._hash_bytes(r.trace_id.to_bytes(16, "big")), "trace_id_hash"
                elif cfg.from_attribute and cfg.from_attribute in attrs:
                    rnd, policy = self._hash_bytes(_value_bytes(attrs[cfg.from_attribute])), \
                        cfg.from_attribute
                if has_rv or has_th:
                    err = True
            else:
                if rv_in is not None:
                    rnd, policy = rv_in, "sampling_randomness"
                elif r.trace_id:
                    rnd, policy = r.trace_id & th.RANDOMNESS_MASK, "trace_id_w3c"
                elif cfg.from_attribute and cfg.from_attribute in attrs:
                    rnd, policy = self._hash_bytes(_value_bytes(attrs[cfg.from_attribute])), \
                        cfg.from_attribute
            if rnd is None:
                err, rnd = True, _ALL_RANDOM
            elif th_in is not None and rnd < th_in:
                err, th_in = True, None
            t = d.on_error() if err else d.decide(th_in)
            if cfg.sampling_priority and cfg.sampling_priority in attrs:
                t = _log_priority(attrs[cfg.sampling_priority], t)
            sampled = rnd >= t
            keep[i] = sampled
            self._count.add(1, policy=policy, sampled=str(sampled).lower(), **lab)
            if sampled:
                new = {"sampling.threshold": th.tvalue(_final_threshold(th_in, t))}
                if d.mode == "hash_seed" and not err:
                    new["sampling.randomness"] = th.rvalue(rnd)
                edits[i] = new
        if not keep.any():
            return None
        idx = np.flatnonzero(keep)
        kept = records.select(idx)
        updates = [edits[i] for i in idx.tolist()]
        it = iter(updates)
        return rewrite(kept, lambda item: item.attributes.update(next(it)))

    def _hash_bytes(self, b: bytes) -> int:
        h = fnv1a32_bytes(self.decider.seed_bytes, b)
        return int(hash_seed_randomness(np.array([h], np.uint32))[0])


def _value_bytes(v) -> bytes:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode()
    return str(v).encode()


def _log_priority(value, threshold: int) -> int:
    """Logs: the priority attribute is a percentage (0 drops, >= 100 keeps
    all); a larger probability than configured wins."""
    try:
        pct = float(value)
    except (TypeError, ValueError):
        return threshold
    if pct <= 0:
        return th.NEVER_SAMPLE
    if pct >= 100:
        return th.ALWAYS_SAMPLE
    return min(threshold, th.probability_to_threshold(max(pct / 100, th.MIN_SAMPLING_PROBABILITY)))


factory = Factory("probabilistic_sampler", Kind.PROCESSOR, ProbabilisticSamplerConfig,
                  ProbabilisticSampler, signals=("traces", "logs"))
