"""Reading back what producers wrote: drain a channel with a real
ChannelConsumer and decode every record and definition."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from otelplug import codec
from otelplug.codec import types
from otelplug.ring import ChannelConsumer


@dataclass
class Drained:
    spans: list = field(default_factory=list)        # (ring_pid, SpanData)
    logs: list = field(default_factory=list)         # (ring_pid, LogData)
    metrics: list = field(default_factory=list)      # (ring_pid, MetricData)
    definitions: dict = field(default_factory=dict)  # ring_pid -> {key: model}
    rings: dict = field(default_factory=dict)        # ring_pid -> header counters

    def resource_of(self, pid, rec):
        return self.definitions[pid][rec.resource_key]

    def scope_of(self, pid, rec):
        return self.definitions[pid].get(rec.scope_key)


def drain(channel=None, timeout=10.0, until_no_producers=False) -> Drained:
    out = Drained()
    defs = defaultdict(dict)
    decoders = {types.SPAN: (codec.decode_span, out.spans),
                types.LOG: (codec.decode_log, out.logs),
                types.METRIC: (codec.decode_metric, out.metrics)}

    def handle(ring, batch):
        pid = ring.pid
        for key, payload in ring.definitions().items():
            if key not in defs[pid]:
                defs[pid][key] = codec.decode_definition(payload)
        for rtype, payload in batch:
            dec, sink = decoders[rtype]
            sink.append((pid, dec(payload)))

    c = ChannelConsumer(channel)
    try:
        c.drain(handle, timeout=timeout, until_no_producers=until_no_producers)
        for ring in c.rings.values():
            out.rings[ring.pid] = ring.header()
        for acct in c.retired:
            out.rings[acct.pid] = {"attempted": acct.attempted, "delivered": acct.delivered,
                                   "dropped_full": acct.dropped_full, "oversize": acct.oversize}
    finally:
        c.close()
    out.definitions = dict(defs)
    return out
