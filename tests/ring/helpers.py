"""Small helpers for ring tests: a writer+reader pair over one segment file."""
from __future__ import annotations

import os
from pathlib import Path

from otelplug.ring.layout import HEADER_SIZE


class Pair:
    """A RingWriter and a RingReader over the same temporary segment."""

    def __init__(self, impl, directory: Path, capacity: int, max_record: int = 1 << 20,
                 start_pos: int = 0, reader_impl=None):
        self.path = Path(directory) / f"ring-{os.urandom(4).hex()}"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(self.fd, HEADER_SIZE + capacity)
        self.writer = impl.RingWriter(self.fd, capacity, max_record, start_pos)
        self.reader = (reader_impl or impl).RingReader(self.fd, HEADER_SIZE + capacity,
                                                       str(self.path))

    def read_all(self, max_records: int = 1 << 20, commit: bool = True):
        """Every record readable now, as (type, bytes, seq)."""
        out = []
        while True:
            b = self.reader.scan(max_records)
            if not b.count:
                return out
            out.extend((int(b.types[i]), bytes(b.payload(i)), int(b.seqs[i]))
                       for i in range(b.count))
            if commit:
                self.reader.commit(b)

    def close(self):
        self.writer.close()
        self.reader.close()
        os.close(self.fd)
