"""Shared-memory rings: the low-level API for adapters and the sidecar.

Producer side (any process; one ring per process per channel)::

    from otelplug.ring import Producer
    p = Producer("default")
    p.write(1, b"payload")          # True if committed, False if dropped

Consumer side (one per channel)::

    from otelplug.ring import ChannelConsumer
    with ChannelConsumer("default") as c:
        for ring, batch in c.poll():
            for rtype, payload in batch:
                ...
            ring.commit(batch)

Record types 1..255 are free for callers (0 is the ring's padding).  The
telemetry codec (spans, logs, metrics) uses its own types on top.
"""
from .consumer import ChannelConsumer, ProducerAccount, Ring
from .producer import DEFAULT_CAPACITY, DEFAULT_MAX_RECORD, Producer
from .segment import resolve_channel

__all__ = ["ChannelConsumer", "DEFAULT_CAPACITY", "DEFAULT_MAX_RECORD", "Producer",
           "ProducerAccount", "Ring", "resolve_channel"]
