"""From a RecordSet to what the analytics engine reads: per item a group
(as an index into the batch's distinct group keys), an event time, a
value (span duration), an error flag, and an ItemBatch for the rules.

Spans are read as numpy columns (codec.decode_span_columns); the group
keys come from ``np.unique`` over the integer columns, so strings are made
once per distinct group, not per span.  Attributes are decoded per span
only for extra dimensions and for spans a rule's cheap filters let through.
Log records have no column decoder yet and are decoded one by one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otelplug import codec
from otelplug.analytics.rules import ItemBatch

from ..spanmetrics import KIND_NAMES, STATUS_NAMES

SEVERITY_ERROR = 17     # OTLP SeverityNumber ERROR


@dataclass
class Items:
    keys: object               # distinct group keys (tuples of strings), indexable
    inverse: np.ndarray        # item -> index into keys
    time: np.ndarray           # int64 ns
    value: np.ndarray          # float64 (span duration in ns; 0 for logs)
    error: np.ndarray          # float64 1.0 / 0.0
    batch: ItemBatch
    codes: np.ndarray | None = None   # stable int64 per key (GroupTable.ids)

    def attributes(self, dims):
        return lambda j: dict(zip(dims, self.keys[j]))


class Interner:
    """Stable small numbers for resources and span names across batches,
    so a group's code is the same in every batch.  Reset (and the codes
    forgotten by the caller) if it grows past ``limit``."""

    def __init__(self, limit: int = 1 << 20):
        self.limit = limit
        self.resources: dict[int, int] = {}
        self.names: dict[str, int] = {}
        self.generation = 0

    def ids(self, table: dict, values) -> np.ndarray:
        if len(table) > self.limit:
            self.resources.clear()
            self.names.clear()
            self.generation += 1
        return np.fromiter((table.setdefault(v, len(table)) for v in values), np.int64, len(values))


class _SpanKeys:
    """Group key j of a batch, made only when asked (for new groups)."""

    def __init__(self, dims, res, r_u, names, n_u, k_u, s_u):
        self.dims, self.res, self.r_u, self.names, self.n_u, self.k_u, self.s_u = \
            dims, res, r_u, names, n_u, k_u, s_u

    def __len__(self):
        return len(self.r_u)

    def __getitem__(self, j):
        full = {"service.name": str(self.res[self.r_u[j]].get("service.name", "")),
                "span.name": self.names[self.n_u[j]],
                "span.kind": KIND_NAMES.get(int(self.k_u[j]), "SPAN_KIND_UNSPECIFIED"),
                "status.code": STATUS_NAMES.get(int(self.s_u[j]), "STATUS_CODE_UNSET")}
        return tuple(full[d] for d in self.dims)


def _dense_unique(local: np.ndarray, space: int):
    """np.unique(local, return_inverse=True) for small non-negative codes:
    a count over the code space instead of a sort."""
    if space <= 8 * len(local) + 65536:
        present = np.bincount(local, minlength=space)
        uniq = np.flatnonzero(present)
        lookup = np.empty(space, np.int64)
        lookup[uniq] = np.arange(len(uniq))
        return uniq, lookup[local]
    uniq, inv = np.unique(local, return_inverse=True)
    return uniq, inv.reshape(-1)


class Resources:
    """Decoded resource attributes by definition key, kept across batches."""

    def __init__(self):
        self._attrs: dict[int, dict] = {}

    def get(self, key: int, defs) -> dict:
        a = self._attrs.get(key)
        if a is None:
            payload = defs.get(key)
            a = codec.decode_definition(payload).attributes if payload is not None else {}
            if len(self._attrs) > 10_000:
                self._attrs.clear()
            self._attrs[key] = a
        return a


def _attribute_reader(decode_one, resource_of):
    cache: dict[int, dict] = {}

    def attribute(i: int, key: str):
        attrs = cache.get(i)
        if attrs is None:
            attrs = cache[i] = decode_one(i).attributes
        v = attrs.get(key)
        return resource_of(i).get(key) if v is None else v
    return attribute


def span_items(records, resources: Resources, dims: list[str], extra, interner: Interner | None = None) -> Items:
    cols = records.cached("span_columns", codec.decode_span_columns)
    n = len(cols)
    rkeys, rinv = np.unique(cols.resource_key, return_inverse=True)
    rinv = rinv.reshape(-1)
    res = [resources.get(int(k), records.defs) for k in rkeys.tolist()]
    decoded: dict[int, object] = {}

    def span(i):
        s = decoded.get(i)
        if s is None:
            s = decoded[i] = codec.decode_span(cols.payload(i))
        return s
    t = cols.end_time_unix_nano.astype(np.int64)
    dur = np.maximum(t - cols.start_time_unix_nano.astype(np.int64), 0).astype(np.float64)
    err = cols.status_code == 2
    batch = ItemBatch("traces", t, cols.name_id.astype(np.int64), list(cols.names), err,
                      _attribute_reader(span, lambda i: res[rinv[i]]))
    if not extra and interner is not None:
        # the usual case: group = resource, name, kind, status; numbered
        # with numpy, strings made only for groups never seen before
        nn = max(len(cols.names), 1)
        kind = cols.kind.astype(np.int64) & 7
        status = cols.status_code.astype(np.int64) & 3
        local = ((rinv.astype(np.int64) * nn + cols.name_id.astype(np.int64)) * 8 + kind) * 4 + status
        uniq, inv = _dense_unique(local, len(rkeys) * nn * 32)
        s_u, k_u = uniq & 3, (uniq >> 2) & 7
        n_u, r_u = (uniq >> 5) % nn, (uniq >> 5) // nn
        res_g = interner.ids(interner.resources, rkeys.tolist())
        name_g = interner.ids(interner.names, cols.names)
        codes = (res_g[r_u] << 36) | (name_g[n_u] << 5) | (k_u << 2) | s_u
        keys = _SpanKeys(dims, res, r_u, cols.names, n_u, k_u, s_u)
        return Items(keys, inv, t, dur, err.astype(np.float64), batch, codes)
    key_cols = [rinv.astype(np.int64), cols.name_id.astype(np.int64), cols.kind.astype(np.int64),
                cols.status_code.astype(np.int64)]
    extra_vals = []
    for d in extra:      # per span: only when extra dimensions are configured
        ids: dict = {}
        col = np.empty(n, np.int64)
        for i in range(n):
            v = span(i).attributes.get(d.name)
            if v is None:
                v = res[rinv[i]].get(d.name, d.default)
            col[i] = ids.setdefault(v, len(ids))
        key_cols.append(col)
        extra_vals.append(list(ids))
    if n:
        groups, inv = np.unique(np.stack(key_cols, axis=1), axis=0, return_inverse=True)
    else:
        groups, inv = np.zeros((0, len(key_cols)), np.int64), np.zeros(0, np.int64)
    keys = []
    for row in groups.tolist():
        full = {"service.name": str(res[row[0]].get("service.name", "")), "span.name": cols.names[row[1]],
                "span.kind": KIND_NAMES.get(row[2], "SPAN_KIND_UNSPECIFIED"),
                "status.code": STATUS_NAMES.get(row[3], "STATUS_CODE_UNSET")}
        for j, d in enumerate(extra):
            v = extra_vals[j][row[4 + j]]
            full[d.name] = "" if v is None else str(v)
        keys.append(tuple(full[d] for d in dims))
    return Items(keys, inv.reshape(-1), t, dur, err.astype(np.float64), batch)


def log_items(records, resources: Resources, dims: list[str], extra) -> Items:
    logs = [codec.decode_log(p) for p in records.payloads()]
    n = len(logs)
    t = np.fromiter(((r.time_unix_nano or r.observed_time_unix_nano) for r in logs), np.int64, n)
    sev = np.fromiter((r.severity_number or 0 for r in logs), np.int64, n)
    names: dict[str, int] = {}
    name_id = np.fromiter((names.setdefault(r.event_name or "", len(names)) for r in logs), np.int64, n)
    res = [resources.get(r.resource_key, records.defs) for r in logs]
    key_index: dict[tuple, int] = {}
    inv = np.empty(n, np.int64)
    for i, r in enumerate(logs):
        full = {"service.name": str(res[i].get("service.name", "")), "event.name": r.event_name or "",
                "severity": r.severity_text or str(r.severity_number or "")}
        for d in extra:
            v = r.attributes.get(d.name, res[i].get(d.name, d.default))
            full[d.name] = "" if v is None else str(v)
        inv[i] = key_index.setdefault(tuple(full[d] for d in dims), len(key_index))
    err = sev >= SEVERITY_ERROR
    batch = ItemBatch("logs", t, name_id, list(names), err,
                      lambda i, k: logs[i].attributes.get(k, res[i].get(k)))
    return Items(list(key_index), inv, t, np.zeros(n), err.astype(np.float64), batch)
