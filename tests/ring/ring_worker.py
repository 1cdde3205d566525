"""A real process for ring tests: ``python ring_worker.py ROLE ...``.

Roles:
  produce CHANNEL INDEX COUNT [--torn-after K] [--forever] [--capacity N]
      writes self-checking records (see ``record``); prints its stats as JSON.
      --torn-after K: after K records, leave a half-written record and
      SIGKILL itself, as a crash mid-write would.
  consume CHANNEL [--max-batches N]
      drains the channel, committing as it goes; on SIGTERM (or after N
      batches) prints what it read as JSON: {pid: [indices...]}.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import sys
import zlib

HEAD = struct.Struct("=IIQI")  # producer index, pid, record index, crc of body


def record(index: int, pid: int, i: int) -> bytes:
    """Self-checking payload: a header with a CRC over a body whose length
    and content follow from the record index."""
    body = bytes([(i + k) % 251 for k in range(20 + i % 180)])
    return HEAD.pack(index, pid, i, zlib.crc32(body)) + body


def check(payload: bytes):
    """(index, pid, i) of a valid record; raises on anything corrupt."""
    index, pid, i, crc = HEAD.unpack_from(payload)
    body = payload[HEAD.size:]
    assert zlib.crc32(body) == crc, "payload CRC mismatch"
    assert body == bytes([(i + k) % 251 for k in range(20 + i % 180)]), "body mismatch"
    return index, pid, i


def produce(argv):
    from otelplug.ring import Producer
    channel, index, count = argv[0], int(argv[1]), int(argv[2])
    torn_after = int(argv[argv.index("--torn-after") + 1]) if "--torn-after" in argv else -1
    capacity = int(argv[argv.index("--capacity") + 1]) if "--capacity" in argv else None
    forever = "--forever" in argv
    p = Producer(channel, capacity=capacity)
    pid = os.getpid()
    i = 0
    print("ready", flush=True)
    while forever or i < count:
        if i == torn_after:
            p._writer._test_torn_write(1, record(index, pid, i), 30)
            os.kill(pid, signal.SIGKILL)
        p.write(1, record(index, pid, i))
        i += 1
    print(json.dumps(p.stats()), flush=True)


def consume(argv):
    from otelplug.ring import ChannelConsumer
    channel = argv[0]
    max_batches = int(argv[argv.index("--max-batches") + 1]) if "--max-batches" in argv else -1
    seen: dict[int, list[int]] = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    batches = 0
    with ChannelConsumer(channel, reclaim=False) as c:
        print("ready", flush=True)
        while not stop and batches != max_batches:
            got = c.poll(max_records=256)
            for ring, batch in got:
                for _t, payload in batch:
                    _index, pid, i = check(bytes(payload))
                    seen.setdefault(pid, []).append(i)
                ring.commit(batch)
                batches += 1
                if batches == max_batches:
                    break
            c.idle(got)
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    {"produce": produce, "consume": consume}[sys.argv[1]](sys.argv[2:])
