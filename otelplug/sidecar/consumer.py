"""What components hand data to: the Consumer interface and fan-out.

``consume(records)`` takes ownership of one share of the records' acks:
the consumer settles it once the data is safe or deliberately dropped.
Raising ``Refused`` means "not taken, keep it and retry later" (the
memory_limiter's answer); the share is then not the consumer's to settle.
"""
from __future__ import annotations

from .ack import hold_all, settle_all
from otelplug.codec.recordset import RecordSet


class Refused(Exception):
    """Backpressure: the data was not accepted; the sender keeps it."""


class Consumer:
    mutates = False   # True if it changes records in place (fan-out copies for it)

    def consume(self, records: RecordSet) -> None:
        raise NotImplementedError


class FanOut(Consumer):
    """Hands the same records to several consumers.  Each gets one share of
    the acks.  Records are views, and processors build new sets instead of
    editing buffers, so only consumers marked ``mutates`` get a copy."""

    def __init__(self, consumers: list[Consumer]):
        self.consumers = list(consumers)
        self.mutates = any(c.mutates for c in self.consumers)

    def consume(self, records: RecordSet) -> None:
        n = len(self.consumers)
        if n == 1:
            self.consumers[0].consume(records)
            return
        hold_all(records.acks, n - 1)
        refused = []
        for i, c in enumerate(self.consumers):
            try:
                c.consume(records.detach() if c.mutates and i < n - 1 else records)
            except Refused as exc:
                refused.append(exc)
        if refused:
            # Refused hands one share back to the caller, who keeps the data
            # and may offer it again (to every branch: the ones that took it
            # get it twice, at-least-once); the other refused shares are
            # settled here.  Not failures: nothing was given up.
            for _ in refused[1:]:
                settle_all(records.acks)
            raise refused[0]


class PipelineRouter(FanOut):
    """What a connector gets from the service as its next consumer: the
    pipelines it feeds, by id (as the Collector hands a connector a router
    of pipelines).  ``consume`` sends to every one of them; a connector
    that routes picks pipelines with ``consumer(ids)``.  Which pipelines a
    connector may name is checked in config validation (the factory's
    ``validate_pipelines``), so a connector never reads the service."""

    def __init__(self, pipelines: dict):
        self.pipelines = dict(pipelines)      # PipelineID -> first consumer
        super().__init__(list(self.pipelines.values()))

    def pipeline_ids(self) -> list:
        return list(self.pipelines)

    def consumer(self, ids) -> FanOut | None:
        """A fan-out to the pipelines ``ids`` (None for none)."""
        return FanOut([self.pipelines[p] for p in ids]) if ids else None
