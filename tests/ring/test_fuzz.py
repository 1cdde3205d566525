"""Hostile bytes in a ring: the reader must count, skip, resynchronise,
never crash and never read outside the mapping.  Both implementations must
agree exactly on any input (differential fuzzing)."""
from __future__ import annotations

import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelplug.ring import _pyring, layout
from otelplug.ring.layout import HEADER_SIZE, record_span

from otelplug._ext import ring as cyring

CAP = 1024


def make_segment(path, valid_records, garbage, garbage_at, wpos_delta, rpos):
    """A ring holding valid records, then overwrite part of it with garbage
    and optionally lie about write_pos/read_pos."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.ftruncate(fd, HEADER_SIZE + CAP)
    w = cyring.RingWriter(fd, CAP, 1 << 20, 0)
    for r in valid_records:
        w.write(1 + len(r) % 255, r)
    w.close()
    with open(path, "r+b") as f:
        f.seek(HEADER_SIZE + garbage_at % CAP)
        f.write(garbage[: CAP - garbage_at % CAP])
        if wpos_delta is not None:
            f.seek(layout.FIELDS["write_pos"][0])
            wp = struct.unpack("=Q", f.read(8))[0]
            f.seek(layout.FIELDS["write_pos"][0])
            f.write(struct.pack("=Q", (wp + wpos_delta) % 2**64))
        if rpos is not None:
            f.seek(layout.FIELDS["read_pos"][0])
            f.write(struct.pack("=Q", rpos))
    return fd


def read_everything(impl, path, fd):
    r = impl.RingReader(fd, HEADER_SIZE + CAP, str(path))
    out = []
    for _ in range(50):  # bounded: a broken reader must not loop forever
        b = r.scan(7)
        out.append([(int(b.types[i]), bytes(b.payload(i))) for i in range(b.count)])
        r.commit(b)
        if not b.count:
            break
    h = r.header()
    r.close()
    return out, h["corrupt"], h["corrupt_bytes"], h["read_pos"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.binary(max_size=200), max_size=8),
       garbage=st.binary(max_size=300), garbage_at=st.integers(0, CAP - 1),
       wpos_delta=st.one_of(st.none(), st.integers(-2048, 2048), st.integers(0, 2**64 - 1)),
       rpos=st.one_of(st.none(), st.integers(0, 2**64 - 1)))
def test_readers_survive_and_agree_on_hostile_bytes(shm_dir, records, garbage, garbage_at,
                                                    wpos_delta, rpos):
    path = shm_dir / "fuzz"
    results = []
    for impl in (cyring, _pyring):
        fd = make_segment(path, records, garbage, garbage_at, wpos_delta, rpos)
        results.append(read_everything(impl, path, fd))
        os.close(fd)
    assert results[0] == results[1]
    for batches in results[0][0]:
        for _, payload in batches:
            assert len(payload) <= CAP // 2


def test_corruption_in_the_middle_is_skipped_and_counted(shm_dir):
    """Trash one record of five: the others arrive intact, one corrupt event."""
    for impl in (cyring, _pyring):
        path = shm_dir / f"mid-{impl.__name__}"
        recs = [bytes([65 + i]) * 40 for i in range(5)]
        span = record_span(40)
        fd = make_segment(path, recs, b"\xff" * 16, 2 * span, None, None)  # 3rd record's header
        batches, corrupt, corrupt_bytes, _ = read_everything(impl, path, fd)
        got = [p for b in batches for _, p in b]
        assert got == recs[:2] + recs[3:]
        assert corrupt == 1 and corrupt_bytes == span
        os.close(fd)


def test_random_segment_files_never_crash_the_consumer(shm_dir):
    from otelplug.ring import ChannelConsumer
    for i in range(20):
        blob = bytearray(os.urandom(HEADER_SIZE + CAP))
        if i % 2:  # a valid-looking header over random data
            struct.pack_into("=QIIQQ", blob, 0, layout.MAGIC, 1, HEADER_SIZE, CAP, 1 << 20)
        (shm_dir / f"otelplug.fz.{i + 1}.0000000{i % 10}.ring").write_bytes(blob)
    with ChannelConsumer("fz") as c:
        for _ in range(5):
            for ring, batch in c.poll():
                for _t, p in batch:
                    assert len(p) <= CAP // 2
                ring.commit(batch)
        assert c.stats.bad_segments == 10  # the ones without a valid header
        assert c.stats.rejected == {"invalid": 10}   # each logged once and counted by reason
        c.discover()
        assert c.stats.rejected == {"invalid": 10}
