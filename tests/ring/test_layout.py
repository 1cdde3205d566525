"""The C header struct and the Python mirror must describe the same bytes."""
from otelplug.ring import layout

from otelplug._ext import ring as cyring


def test_struct_offsets_match_python_mirror():
    for name, off in cyring.layout_offsets().items():
        assert layout.FIELDS[name][0] == off, name


def test_both_writers_produce_identical_bytes(tmp_path):
    """Same records through both writers give byte-identical data areas and
    identical counters (check values, padding, sequence numbers)."""
    import os
    from otelplug.ring import _pyring

    images = []
    for mod in (cyring, _pyring):
        path = tmp_path / mod.__name__
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(fd, layout.HEADER_SIZE + 256)
        w = mod.RingWriter(fd, 256, 1 << 20, 1 << 32)
        w.write(3, b"a" * 10)
        w.write(4, b"b" * 90)
        w.write(5, b"")  # empty payload is a valid record
        w.write(6, b"c" * 200)  # oversize for a 256-byte ring
        w.close()
        with open(path, "rb") as f:
            images.append(f.read())
        os.close(fd)
    cy, py = images
    assert cy[layout.HEADER_SIZE:] == py[layout.HEADER_SIZE:]
    skip = {"created_ns", "pid"}
    for name in layout.FIELDS:
        if name not in skip:
            assert layout.read_field(cy, name) == layout.read_field(py, name), name
    assert layout.read_field(cy, "oversize") == 1
