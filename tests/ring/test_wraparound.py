"""Wrap-around: tiny rings, random sizes, exact fits at the end of the data
area, maximum-size records, and free-running positions near 2^32 and 2^64.

Each case runs the same operations through the Cython ring, the pure-Python
reference and a plain model (a list), and all three must agree on which
writes were accepted and what was read.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelplug.ring import _pyring
from otelplug.ring.layout import REC_HEADER, record_span

from .helpers import Pair

from otelplug._ext import ring as cyring

START_POSITIONS = [0, 2**32 - 64, 2**32 - 8, 2**64 - 64, 2**64 - 8, 2**64 - 4096]
CAPACITIES = [64, 128, 256, 1024]


def run_ops(impl, shm_dir, capacity, start, ops):
    """Apply ops ('w', size) / ('r', max_records); return the observable log."""
    pair = Pair(impl, shm_dir, capacity, start_pos=start)
    log = []
    n = 0
    for op, arg in ops:
        if op == "w":
            n += 1
            payload = bytes([n % 251]) * arg
            log.append(("w", pair.writer.write(1 + n % 200, payload)))
        else:
            b = pair.reader.scan(arg)
            log.append(("r", [(int(b.types[i]), bytes(b.payload(i)), int(b.seqs[i]))
                              for i in range(b.count)]))
            pair.reader.commit(b)
    log.append(("rest", pair.read_all()))
    h = pair.reader.header()
    log.append(("counts", h["attempted"], h["committed"], h["dropped_full"],
                h["oversize"], h["delivered"], h["corrupt"]))
    pair.close()
    return log


def model(capacity, start, ops):
    """What the ring must do, from the format rules alone."""
    max_rec = capacity // 2 - REC_HEADER
    mask = capacity - 1
    wpos = rpos = start
    queue, log = [], []
    n = seq = 0
    attempted = committed = dropped = oversize = delivered = 0
    for op, arg in ops:
        if op == "w":
            n += 1
            attempted += 1
            payload = bytes([n % 251]) * arg
            if arg > max_rec:
                oversize += 1
                log.append(("w", False))
                continue
            span = record_span(arg)
            tail = capacity - (wpos & mask)
            pad = tail if tail < span else 0
            if pad + span > capacity - (wpos - rpos):
                dropped += 1
                log.append(("w", False))
                continue
            wpos += pad + span
            queue.append((1 + n % 200, payload, seq, wpos))
            seq += 1
            committed += 1
            log.append(("w", True))
        else:
            take, queue = queue[:arg], queue[arg:]
            if take:
                rpos = take[-1][3]
            delivered += len(take)
            log.append(("r", [t[:3] for t in take]))
    delivered += len(queue)
    log.append(("rest", [t[:3] for t in queue]))
    log.append(("counts", attempted, committed, dropped, oversize, delivered, 0))
    return log


ops_strategy = st.lists(
    st.one_of(st.tuples(st.just("w"), st.integers(0, 600)),
              st.tuples(st.just("r"), st.integers(1, 8))),
    max_size=120)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(capacity=st.sampled_from(CAPACITIES), start=st.sampled_from(START_POSITIONS),
       ops=ops_strategy)
def test_implementations_agree_with_the_model(shm_dir, capacity, start, ops):
    expected = model(capacity, start, ops)
    assert run_ops(cyring, shm_dir, capacity, start, ops) == expected
    assert run_ops(_pyring, shm_dir, capacity, start, ops) == expected


@pytest.mark.parametrize("impl", [cyring, _pyring], ids=["cyring", "pyring"])
@pytest.mark.parametrize("start", START_POSITIONS)
def test_exact_fit_at_the_end_and_maximum_size(impl, shm_dir, start):
    cap = 256
    pair = Pair(impl, shm_dir, cap, start_pos=start)
    max_rec = pair.writer.max_record
    assert max_rec == cap // 2 - REC_HEADER
    first = (cap - (start % cap)) % cap  # bytes from start to the end of the data area
    # fill exactly to the end of the data area (no padding needed), then wrap
    if first >= REC_HEADER:
        assert pair.writer.write(1, b"e" * (first - REC_HEADER))
    assert pair.writer.write(2, b"M" * max_rec)  # starts at index 0 or exactly fits
    got = pair.read_all()
    assert got[-1][:2] == (2, b"M" * max_rec)
    # with the ring empty a maximum record always fits, wherever the position is
    for k in range(40):
        assert pair.writer.write(3, bytes([k]) * max_rec)
        assert pair.read_all() == [(3, bytes([k]) * max_rec, len(got) + k)]
    h = pair.reader.header()
    assert h["dropped_full"] == 0 and h["corrupt"] == 0
    assert h["write_pos"] != start and h["write_pos"] == h["read_pos"]
    pair.close()


@pytest.mark.parametrize("impl", [cyring, _pyring], ids=["cyring", "pyring"])
def test_position_counter_wraps_past_2_64(impl, shm_dir):
    pair = Pair(impl, shm_dir, 128, start_pos=2**64 - 32)
    for i in range(20):
        assert pair.writer.write(1, bytes([i]) * 20)
        assert pair.read_all()[0][1] == bytes([i]) * 20
    assert pair.reader.header()["write_pos"] < 2**10  # it wrapped through zero
    pair.close()
