"""The ring side of issue 18 against a real sidecar process: corrupt metric
records and definitions are skipped and counted while spans keep flowing
(also after a restart); a component thread that dies makes the sidecar
unhealthy and exit non-zero; a ring truncated under a running sidecar is
dropped and reported, never a SIGBUS; a clean exit leaves no files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from otelplug.codec import _pycodec
from otelplug.codec import types as wire

from .test_reliability import free_port, scrape, start_sidecar, wait_metrics
from .test_service import wait_healthy

RECEIVER_METRIC = "otelplug_ring_corrupt_records_total"


def _config(tmp_path, channel, metrics_port, health_port):
    return f"""
receivers:
  shm: {{channels: [{channel}], min_poll_interval: 0s}}
exporters:
  file/t: {{path: {tmp_path}/t.jsonl}}
  file/m: {{path: {tmp_path}/m.jsonl}}
  file/l: {{path: {tmp_path}/l.jsonl}}
extensions:
  health_check: {{endpoint: 127.0.0.1:{health_port}}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}
  pipelines:
    traces: {{receivers: [shm], exporters: [file/t]}}
    metrics: {{receivers: [shm], exporters: [file/m]}}
    logs: {{receivers: [shm], exporters: [file/l]}}
"""


def _span_names(path) -> list[str]:
    if not path.exists():
        return []
    names = []
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                names += [s["name"] for s in ss["spans"]]
    return names


def _wait(cond, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _tracer(channel):
    from opentelemetry.sdk.trace import TracerProvider

    from otelplug import ShmSpanProcessor
    proc = ShmSpanProcessor(channel)
    tp = TracerProvider()
    tp.add_span_processor(proc)
    return proc, tp.get_tracer("reliability.ring")


def _spans(tracer, name, n):
    for _ in range(n):
        with tracer.start_as_current_span(name):
            pass


def _metric_record(kind: int | None = None) -> bytes:
    from opentelemetry.sdk.metrics.export import Gauge, Metric, NumberDataPoint
    m = Metric("ring.test.gauge", "d", "1", Gauge([NumberDataPoint({"a": 1}, 1, 2, 3.0)]))
    rec = bytearray(_pycodec.encode_metric(m, 0, 0))
    if kind is not None:
        rec[16] = kind          # the data kind byte (see codec/types.py METRIC_PREFIX)
    return bytes(rec)


def _records(path) -> list[tuple[int, int, bytes]]:
    """(position, type, payload) of every record in a fresh ring file (no
    wrap-around yet: a 16 MiB ring)."""
    from otelplug.ring.layout import HEADER_SIZE, REC_HEADER, REC_STRUCT, read_header, record_span
    blob = path.read_bytes()
    h = read_header(blob)
    pos, out = h["start_pos"], []
    while pos < h["write_pos"]:
        length, rtype, _, _, _ = REC_STRUCT.unpack_from(blob, HEADER_SIZE + pos)
        start = HEADER_SIZE + pos + REC_HEADER
        out.append((pos, rtype, blob[start:start + length]))
        pos += record_span(length)
    return out


def _record_starts(path) -> list[int]:
    return [pos for pos, _, _ in _records(path)]


def _last_span_record(producer) -> bytes:
    """The payload of the last span record in the producer's ring."""
    return [p for _, t, p in _records(producer.path) if t == wire.SPAN][-1]


def _stop(sidecar) -> int:
    sidecar.send_signal(signal.SIGTERM)
    return sidecar.wait(60)


def test_corrupt_metric_records_and_definitions_are_skipped_and_counted(tmp_path):
    channel = "corruptm"
    mport, hport = free_port(), free_port()
    cfg = _config(tmp_path, channel, mport, hport)
    sidecar = start_sidecar(tmp_path, cfg, "s1")
    try:
        wait_healthy(hport)
        proc, tracer = _tracer(channel)
        producer = proc.producer
        _spans(tracer, "before", 1)
        good_span = _last_span_record(producer)
        assert producer.write(wire.SPAN, b"\x00" * 10)                     # truncated span
        assert producer.write(wire.SPAN, good_span[:-3])                    # cut short
        assert producer.write(wire.LOG, _log_record(1)[:-2])                # cut short
        assert producer.write(wire.LOG, _log_record(2))                     # a good one
        assert producer.write(wire.METRIC, b"\x00" * 10)                   # truncated
        assert producer.write(wire.METRIC, _metric_record(kind=99))        # unknown metric kind
        assert producer.write(wire.METRIC, _metric_record())               # a good one
        assert producer.define(0x5EED, b"\x01\xff\xff\xff\xff\xff")        # corrupt definition
        _spans(tracer, "after", 5)
        _wait(lambda: _span_names(tmp_path / "t.jsonl").count("after") == 5, what="spans after")
        m = _wait(lambda: (lambda s: s if s.get(
            f'{RECEIVER_METRIC}{{channel="{channel}",record_type="definitions"}}') else None)(
            scrape(mport)), what="the corrupt definition to be counted")
        assert m[f'{RECEIVER_METRIC}{{channel="{channel}",record_type="metrics"}}'] == 2
        assert m[f'{RECEIVER_METRIC}{{channel="{channel}",record_type="traces"}}'] == 2
        assert m[f'{RECEIVER_METRIC}{{channel="{channel}",record_type="logs"}}'] == 1
        _wait(lambda: (tmp_path / "l.jsonl").exists() and "hello 2" in (tmp_path / "l.jsonl").read_text(),
              what="the good log record")
        assert _span_names(tmp_path / "t.jsonl").count("before") == 1
        assert m[f'{RECEIVER_METRIC}{{channel="{channel}",record_type="definitions"}}'] == 1
        assert m['otelplug_receiver_accepted_metric_points_total{receiver="shm",transport="shm"}'] == 1
        _wait(lambda: (tmp_path / "m.jsonl").exists() and "ring.test.gauge" in (tmp_path / "m.jsonl").read_text(),
              what="the good metric")
        assert json.loads(urllib.request.urlopen(f"http://127.0.0.1:{hport}/").read())["state"] == "ready"
        log = (tmp_path / "s1.log").read_text()
        assert "corrupt metrics record(s) on channel corruptm" in log
        assert "corrupt traces record(s) on channel corruptm" in log
        assert "truncated" in log and "unknown metric kind 99" in log
        assert "skipped a corrupt definition (key 0x5eed)" in log
    finally:
        assert _stop(sidecar) == 0
    # a restarted sidecar does not meet the corrupt records again: they were committed
    sidecar = start_sidecar(tmp_path, cfg, "s2")
    try:
        wait_healthy(hport)
        _spans(tracer, "restarted", 3)
        _wait(lambda: _span_names(tmp_path / "t.jsonl").count("restarted") == 3, what="spans after restart")
        m = scrape(mport)
        # metric records were committed; definitions are never consumed (a new
        # consumer reads them all again), so the new process meets that one once
        assert m.get(f'{RECEIVER_METRIC}{{channel="{channel}",record_type="metrics"}}', 0) == 0
        assert m.get(f'{RECEIVER_METRIC}{{channel="{channel}",record_type="traces"}}', 0) == 0
        assert m[f'{RECEIVER_METRIC}{{channel="{channel}",record_type="definitions"}}'] == 1
    finally:
        assert _stop(sidecar) == 0
    proc.shutdown()


DYING_SIDECAR = """
import sys
from otelplug.sidecar.receivers import shm
calls = []
def failing_retire(self, owner):
    calls.append(1)
    if len(calls) > 20:
        raise RuntimeError("injected failure in the receiver loop")
shm.ShmReceiver._retire = failing_retire
from otelplug.cli.main import main
sys.exit(main(["run", "--config", sys.argv[1], "--log-level", "info"]))
"""


def test_dead_receiver_thread_exits_non_zero_with_a_clear_log_line(tmp_path):
    mport, hport = free_port(), free_port()
    cfg = tmp_path / "dying.yaml"
    cfg.write_text(_config(tmp_path, "dying", mport, hport))
    with open(tmp_path / "dying.log", "wb") as log:
        sidecar = subprocess.Popen([sys.executable, "-c", DYING_SIDECAR, str(cfg)],
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        assert sidecar.wait(60) == 70
    finally:
        if sidecar.poll() is None:
            sidecar.kill()
    text = (tmp_path / "dying.log").read_text()
    assert "component thread 'shm' died: RuntimeError: injected failure" in text
    assert "exiting with status 70" in text


def test_dead_component_thread_turns_health_unhealthy(tmp_path):
    """In process, to look at the health endpoint before the exit."""
    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.factories import Registry
    from otelplug.sidecar.service import Service
    from otelplug.sidecar.receivers import shm

    hport = free_port()
    svc = Service(load("h.yaml", Registry.default(),
                       text=_config(tmp_path, "unhealthy", free_port(), hport)))
    svc.start()
    try:
        wait_healthy(hport)
        (receiver,) = svc.receivers.values()

        def boom(_owner):
            raise RuntimeError("injected")
        receiver._retire = boom
        _wait(lambda: svc.failure, what="the failure to be noticed")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{hport}/", timeout=5)
        assert err.value.code == 503
        body = json.loads(err.value.read())
        assert body["state"].startswith("failed: thread 'shm' died: RuntimeError: injected")
        assert isinstance(receiver, shm.ShmReceiver)
    finally:
        svc.shutdown()


@pytest.mark.parametrize("pure", ["0", "1"], ids=["cyring", "pyring"])
def test_truncated_ring_is_dropped_and_reported_not_sigbus(tmp_path, monkeypatch, pure):
    monkeypatch.setenv("OTELPLUG_PURE_PYTHON", pure)
    channel = "truncme"
    mport, hport = free_port(), free_port()
    sidecar = start_sidecar(tmp_path, _config(tmp_path, channel, mport, hport))
    victim = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from otelplug.ring import Producer\n"
         f"p = Producer({channel!r}); p.write(1, b'x' * 100); print(p.path, flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        wait_healthy(hport)
        ring_path = victim.stdout.readline().strip()
        _wait(lambda: scrape(mport).get(f'otelplug_ring_producers{{channel="{channel}"}}') == 1,
              what="the sidecar to open the ring")
        os.truncate(ring_path, 4096)
        m = _wait(lambda: (lambda s: s if s.get(
            f'otelplug_ring_rejected_files_total{{channel="{channel}",reason="truncated"}}') else None)(
            scrape(mport)), what="the truncated ring to be reported")
        assert m[f'otelplug_ring_rejected_files_total{{channel="{channel}",reason="truncated"}}'] == 1
        proc, tracer = _tracer(channel)      # the sidecar keeps serving other rings
        _spans(tracer, "after-truncate", 4)
        _wait(lambda: _span_names(tmp_path / "t.jsonl").count("after-truncate") == 4,
              what="spans from an honest producer")
        proc.shutdown()
        assert sidecar.poll() is None
        assert (tmp_path / "sidecar.log").read_text().count("(truncated)") == 1
    finally:
        victim.kill()
        victim.wait()
        assert _stop(sidecar) == 0


def test_clean_exit_of_producers_and_sidecar_leaves_no_files(tmp_path, shm_dir):
    channel = "tidy"
    mport, hport = free_port(), free_port()
    sidecar = start_sidecar(tmp_path, _config(tmp_path, channel, mport, hport))
    try:
        wait_healthy(hport)
        producer = subprocess.run(
            [sys.executable, "-c",
             "from opentelemetry.sdk.trace import TracerProvider\n"
             "from otelplug import ShmSpanProcessor\n"
             f"tp = TracerProvider(); tp.add_span_processor(ShmSpanProcessor({channel!r}))\n"
             "with tp.get_tracer('t').start_as_current_span('bye'): pass\n"
             "tp.shutdown()\n"], timeout=60)
        assert producer.returncode == 0
        _wait(lambda: "bye" in _span_names(tmp_path / "t.jsonl"), what="the span")
        _wait(lambda: not list(shm_dir.glob("*.ring")), what="the ring to be reclaimed")
    finally:
        assert _stop(sidecar) == 0
    assert sorted(p.name for p in shm_dir.iterdir()) == []


def test_span_check_rejects_what_decode_span_rejects():
    """ring_checks.check_spans (record_check's walker) against decode_span
    on random damage, invalid UTF-8 included: the same verdict."""
    from otelplug import codec
    from otelplug.sidecar.receivers.ring_checks import check_spans
    from tests.sidecar.helpers import sdk_spans
    good = [codec.encode_span(s, 1, 2) for s in sdk_spans(10, attrs={"a": [1, 2], "s": "héllo"})]
    _check_agrees_with_decoder("traces", good, check_spans, codec.decode_span, seed=7)


def test_log_check_rejects_what_decode_log_rejects():
    """ring_checks.check_logs (record_check.corrupt_logs) against
    decode_log on random damage, invalid UTF-8 included: the same verdict."""
    from otelplug import codec
    from otelplug.sidecar.receivers.ring_checks import check_logs
    good = [_log_record(i) for i in range(10)]
    _check_agrees_with_decoder("logs", good, check_logs, codec.decode_log, seed=11)


def _check_agrees_with_decoder(signal, good, check, decode, seed):
    """3,000 damaged copies of ``good`` records (cut short, bits flipped):
    ``check`` flags exactly those ``decode`` raises on."""
    import random

    from otelplug.codec.recordset import RecordSet
    rng = random.Random(seed)
    payloads = []
    for _ in range(3000):
        r = bytearray(rng.choice(good))
        if rng.random() < 0.5:
            del r[rng.randrange(len(r)):]
        for _ in range(rng.randint(0, 3) if r else 0):
            r[rng.randrange(len(r))] ^= 1 << rng.randrange(8)
        payloads.append(bytes(r))
    bad, _ = check(RecordSet.from_parts(signal, payloads, {}))
    utf8 = 0
    for p, flagged in zip(payloads, bad.tolist()):
        try:
            decode(p)
            rejected = False
        except UnicodeDecodeError:
            rejected = True
            utf8 += 1
        except ValueError:
            rejected = True
        assert flagged == rejected, p
    assert bad.sum() > 1000 and utf8 > 10


def _log_record(i: int) -> bytes:
    """An encoded SDK log record with a body, a map body part and attributes."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from otelplug import codec
    lp = LoggerProvider()
    mem = InMemoryLogRecordExporter()
    lp.add_log_record_processor(SimpleLogRecordProcessor(mem))
    lp.get_logger("ring.test").emit(body={"msg": f"hello {i}", "n": [1, 2.5, True]},
                                    attributes={"i": i, "s": "héllo", "a": ["x", "y"]},
                                    event_name="ring.test.event")
    (data,) = mem.get_finished_logs()
    return codec.encode_log(data.log_record, 0, 1, 2)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes_in_unread_ring_every_span_accounted(tmp_path, shm_dir, seed):
    """Issue 18, item 10: random bytes in the unread part of a ring; the
    sidecar's self-metrics account for every span written: exported +
    corrupt (lost in bad bytes, or a damaged span record) == written."""
    import random

    from otelplug.ring.layout import HEADER_SIZE, read_header
    channel = f"rnd{seed}"
    written = subprocess.run(
        [sys.executable, "-c",
         "from opentelemetry.sdk.trace import TracerProvider\n"
         "from otelplug import ShmSpanProcessor\n"
         f"p = ShmSpanProcessor({channel!r}); tp = TracerProvider(); tp.add_span_processor(p)\n"
         "t = tp.get_tracer('t')\n"
         "for i in range(300):\n"
         "    with t.start_as_current_span(f'span-{i}', attributes={'i': i}): pass\n"
         "print(p.written)\n"], capture_output=True, text=True, timeout=60)
    assert written.returncode == 0, written.stderr
    written = int(written.stdout.split()[-1])
    (ring,) = shm_dir.glob(f"otelplug.{channel}.*.ring")
    rng = random.Random(seed)
    starts = _record_starts(ring)
    with open(ring, "r+b") as f:
        h = read_header(f.read(HEADER_SIZE))
        for _ in range(5):              # anywhere: mostly inside span payloads
            f.seek(HEADER_SIZE + h["read_pos"] + rng.randrange(h["write_pos"] - h["read_pos"] - 32))
            f.write(bytes(rng.randrange(256) for _ in range(rng.randint(1, 24))))
        for start in rng.sample(starts[1:], 2):   # and two record headers
            f.seek(HEADER_SIZE + start)
            f.write(bytes(rng.randrange(256) for _ in range(16)))
    mport, hport = free_port(), free_port()
    sidecar = start_sidecar(tmp_path, _config(tmp_path, channel, mport, hport))
    try:
        wait_healthy(hport)
        _wait(lambda: not list(shm_dir.glob("*.ring")), what="the ring to be reclaimed")
        m = scrape(mport)
        exported = m.get('otelplug_exporter_sent_spans_total{exporter="file/t"}', 0)
        corrupt = sum(m.get(f'{RECEIVER_METRIC}{{channel="{channel}",record_type="{t}"}}', 0)
                      for t in ("unknown", "traces"))
        assert exported + corrupt == written, (exported, corrupt, written)
        assert m[f'{RECEIVER_METRIC}{{channel="{channel}",record_type="unknown"}}'] >= 2
        assert m[f'otelplug_ring_corrupt_bytes_total{{channel="{channel}"}}'] >= 32
    finally:
        assert _stop(sidecar) == 0
