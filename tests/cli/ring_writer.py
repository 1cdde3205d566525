"""A producer process for the CLI tests: writes a known set of records, then
prints its own tally (the truth the inspector must match) as one JSON line
and keeps its ring alive until its stdin is closed.

Usage: python ring_writer.py CHANNEL CAPACITY COUNT [OVERSIZE]
"""
import json
import os
import sys

from otelplug.ring import Producer
from otelplug.ring.layout import record_span

SIZES = (1, 50, 100, 333)      # varied, so byte counters are not a multiple of the count


def main() -> None:
    channel, capacity, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    oversize = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    p = Producer(channel, capacity=capacity)
    t = dict(attempted=0, written=0, written_bytes=0, used_bytes=0, dropped_full=0,
             dropped_full_bytes=0, oversize=0, oversize_bytes=0)
    too_big = b"o" * capacity          # larger than any ring of this capacity accepts
    records = [b"r" * SIZES[i % len(SIZES)] for i in range(count)] + [too_big] * oversize
    for data in records:
        t["attempted"] += 1
        if p.write(1, data):
            t["written"] += 1
            t["written_bytes"] += len(data)
            t["used_bytes"] += record_span(len(data))
        elif data is too_big:
            t["oversize"] += 1
            t["oversize_bytes"] += len(data)
        else:
            t["dropped_full"] += 1
            t["dropped_full_bytes"] += len(data)
    t["pid"] = os.getpid()
    print(json.dumps(t), flush=True)
    sys.stdin.read()           # hold the ring (and its liveness lock) until told to go
    p.close()


if __name__ == "__main__":
    main()
