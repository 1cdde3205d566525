"""resource: edits resource attributes with the Collector's actions.

A resource is a definition that records refer to by key, so the edit runs
once per distinct resource, not per record: each edited resource is encoded
under its new content key and the records' key field is patched in a copy
of the batch bytes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from otelplug import codec
from otelplug.codec import types as wire

from ..component import Factory, Kind
from otelplug.codec.recordset import RecordSet
from ..helpers.processor import Processor
from ..rewrite import encode_resource
from ._actions import Action, CompiledActions

# where each record type keeps its resource key
RESOURCE_KEY_OFFSET = {"traces": wire.SPAN_RESOURCE_KEY_AT, "logs": wire.LOG_RESOURCE_KEY_AT,
                       "metrics": wire.METRIC_RESOURCE_KEY_AT}
_U64 = struct.Struct("<Q")


@dataclass
class ResourceConfig:
    """``attributes``: actions applied in order to each resource's attributes."""
    attributes: list[Action] = field(default_factory=list)

    def validate(self):
        return [] if self.attributes else [(("attributes",), "at least one action is required")]


class ResourceProcessor(Processor):
    def __init__(self, settings, config: ResourceConfig, next_consumer):
        super().__init__(settings, config, next_consumer)
        self.actions = CompiledActions(config.attributes)
        self._memo: dict[tuple[int, bytes], tuple[int, bytes]] = {}

    def _edited(self, key: int, payload: bytes) -> tuple[int, bytes]:
        memo = self._memo.get((key, payload))
        if memo is None:
            res = codec.decode_definition(payload)
            self.actions.apply(res.attributes)
            new = encode_resource(res)
            memo = self._memo[(key, payload)] = (codec.definition_key(new), new)
            if len(self._memo) > 4096:   # bounded: resources are few, but never unbounded
                self._memo.clear()
        return memo

    def process(self, records: RecordSet):
        off = RESOURCE_KEY_OFFSET[records.signal]
        buf = bytearray()
        new_defs = dict(records.defs)
        offsets = np.empty(len(records), dtype=np.uint64)
        swaps: dict[int, int] = {}
        for i, payload in enumerate(records.payloads()):
            offsets[i] = len(buf)
            start = len(buf)
            buf += payload
            if len(payload) < off + 8:
                continue
            (key,) = _U64.unpack_from(buf, start + off)
            if key not in swaps:
                old = records.defs.get(key)
                if old is None:
                    swaps[key] = key
                else:
                    nk, nd = self._edited(key, old)
                    new_defs[nk] = nd
                    swaps[key] = nk
            _U64.pack_into(buf, start + off, swaps[key])
        return RecordSet(records.signal, bytes(buf), offsets, records.lengths.copy(), new_defs,
                         records.acks, records.items)


factory = Factory("resource", Kind.PROCESSOR, ResourceConfig, ResourceProcessor)
