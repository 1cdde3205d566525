"""forward: passes data from one pipeline to others of the same signal."""
from __future__ import annotations

from dataclasses import dataclass

from ..component import SIGNALS, Factory, Kind
from ..consumer import Consumer


@dataclass
class ForwardConfig:
    pass


class Forward(Consumer):
    def __init__(self, settings, config, next_consumer):
        self.next = next_consumer

    def consume(self, records) -> None:
        self.next.consume(records)

    def start(self, host) -> None:
        pass

    def shutdown(self) -> None:
        pass


factory = Factory("forward", Kind.CONNECTOR, ForwardConfig, Forward,
                  connects=tuple((s, s) for s in SIGNALS))
