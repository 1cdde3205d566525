"""Data-path failures of issue #18, each reproduced with real peers: a real
sidecar process, a ring producer process, an OTLP destination process that
goes away and comes back, real files and sockets.

* a batch processor in front of an exporter that refuses (full sending
  queue during an outage) keeps the data and pushes back to the rings
  instead of dropping it;
* persistent-queue writes that fail (short writes, a file size limit, a
  real sidecar whose RLIMIT_FSIZE is lifted later) are refused, never
  acknowledged, and leave no temporaries;
* memory_limiter limits what the pipeline holds, admits again once that
  drops, and OTLP/HTTP bodies are bounded before they are read;
* the HTTP listen backlog, non-object OTLP-JSON, refusals counted once;
* ``ack: durable``: an OTLP request answered 200 survives a SIGKILL.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.sidecar.test_reliability import (free_port, scrape, start_producer, start_sidecar,
                                            stop_producer, wait_metrics)

HERE = Path(__file__).parent
EXP = "otlp_grpc"     # the id of an exporter built by tests.sidecar.helpers.make


def wait_for(predicate, timeout: float, what: str):
    """Poll for a state; fail with ``what`` if it never comes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def otlp_exporter(endpoint: str, sending_queue: str) -> str:
    """An otlp exporter's YAML (flow style) that retries fast and forever."""
    return (f"otlp: {{endpoint: '{endpoint}', tls: {{insecure: true}}, timeout: 1s, "
            f"retry_on_failure: {{initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 0s}}, "
            f"sending_queue: {sending_queue}}}")


def wait_listening(port: int, timeout: float = 30) -> None:
    """Until something accepts connections on 127.0.0.1:port (the metrics
    endpoint comes up before the receivers)."""
    import socket

    def accepts():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(accepts, timeout, f"a listener on port {port}")


def start_sink(port: int, received: Path) -> subprocess.Popen:
    """The OTLP destination as a process; span ids it accepts are appended
    to ``received``."""
    p = subprocess.Popen([sys.executable, str(HERE / "sink_process.py"), str(port), str(received)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def stop_sink(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0


def received_ids(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def metric(m: dict, name: str, **labels) -> float:
    lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return m.get(f"{name}{{{lab}}}" if lab else name, 0.0)


def test_batch_keeps_what_a_full_queue_refuses_during_an_outage(tmp_path):
    """#18 item 2: batch -> exporter with queue_size 2, destination process
    down for seconds while a producer writes 1,000 spans/s: every span
    arrives, nothing is dropped anywhere, the refusals reach the ring."""
    sink_port, metrics_port = free_port(), free_port()
    cfg = f"""
receivers:
  shm: {{channels: [bp]}}
processors:
  batch: {{send_batch_size: 200, timeout: 100ms}}
exporters:
  {otlp_exporter(f"127.0.0.1:{sink_port}", "{num_consumers: 2, queue_size: 2}")}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [batch], exporters: [otlp]}}
"""
    received = tmp_path / "received.txt"
    sink = start_sink(sink_port, received)
    sidecar = start_sidecar(tmp_path, cfg)
    producer = None
    try:
        wait_metrics(metrics_port)
        producer = start_producer("bp", 1000)
        sent = lambda: metric(scrape(metrics_port), "otelplug_exporter_sent_spans_total", exporter="otlp")
        wait_for(lambda: sent() >= 400, 30, "spans delivered before the outage")
        stop_sink(sink)                          # the destination goes away
        before = received_ids(received)
        # back-pressure, sustained: the queue (2 batches) is long full and
        # thousands of spans wait in the ring (about 200 bytes each)
        in_ring = lambda: sum(v for k, v in scrape(metrics_port).items()
                              if k.startswith("otelplug_ring_pending_bytes{"))
        wait_for(lambda: in_ring() >= 2000 * 200, 60, "spans to wait in the ring")
        assert metric(scrape(metrics_port), "otelplug_processor_refused_items_total",
                      processor="batch", otel_signal="traces") > 0
        sink = start_sink(sink_port, received)   # ... and comes back
        wait_for(lambda: sent() >= len(before) + 1000, 60, "delivery to resume")
        result = stop_producer(producer)
        producer = None
        expected = set(result["span_ids"])
        assert result["dropped"] == 0 and len(expected) >= 2400
        wait_for(lambda: expected <= set(received_ids(received)), 60,
                 f"all {len(expected)} spans to arrive")
        stop_sink(sink)
        sink = None
        got = received_ids(received)
        assert set(got) == expected
        m = scrape(metrics_port)
        for name in ("otelplug_processor_failed_items_total", "otelplug_processor_dropped_items_total"):
            assert metric(m, name, processor="batch", otel_signal="traces") == 0, name
        assert metric(m, "otelplug_exporter_send_failed_spans_total", exporter="otlp") == 0
        # at-least-once: duplicates come only from what was in flight when
        # the ring was rewound (a batch or two and the queue), not the outage
        assert len(got) - len(set(got)) <= 2000, len(got) - len(set(got))
        # #18 item 10: a refused item counts once where it was refused (the
        # issue saw 1,048,205 for 10,000 spans); its re-offers count apart
        assert metric(m, "otelplug_exporter_enqueue_failed_spans_total", exporter="otlp") <= 5 * 200
        assert 0 < metric(m, "otelplug_receiver_refused_spans_total", receiver="shm",
                          transport="shm") <= len(expected)
        assert metric(m, "otelplug_receiver_refused_again_items_total", receiver="shm",
                      transport="shm", otel_signal="traces") > 0
        log = (tmp_path / "sidecar.log").read_text()
        assert "dropping them" not in log
    finally:
        for p in (producer, sink):
            if p is not None and p.poll() is None:
                p.kill()
        sidecar.send_signal(signal.SIGTERM)
        assert sidecar.wait(30) == 0


# -- #18 item 8: persistent-queue writes on a full disk ----------------------------

_FSIZE_LIMITED_PUT = r"""
import resource, sys
from otelplug.sidecar.helpers.persistent_queue import PersistentQueue, QueueWriteError
q = PersistentQueue(sys.argv[1], 10)
resource.setrlimit(resource.RLIMIT_FSIZE, (61440, 61440))   # the issue's short file size
try:
    q.put(b"x" * 200_000, items=201)
    print("acknowledged")
except QueueWriteError as exc:
    print("refused", exc.errno)
print("put small", q.put(b"y" * 1000, items=1))
"""


def test_persistent_queue_refuses_a_write_the_file_size_limit_cuts_short(tmp_path):
    """A real short write (RLIMIT_FSIZE makes write() fail past 61,440 bytes,
    as a full disk does): refused, nothing left behind, the queue still works."""
    from otelplug.sidecar.helpers.persistent_queue import PersistentQueue
    out = subprocess.run([sys.executable, "-c", _FSIZE_LIMITED_PUT, str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0].startswith("refused") and lines[1] == "put small True", out.stdout
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".batch"]     # no *.tmp
    q = PersistentQueue(tmp_path, 10)
    ticket, payload = q.take()
    assert bytes(payload) == b"y" * 1000


class _ShortWrites:
    """os.write that writes half of what it is asked, then fails, as on a
    disk that fills up mid-write; ``on`` switches it."""

    def __init__(self, monkeypatch):
        import os

        from otelplug.sidecar.helpers import persistent_queue
        self.on = True
        real = os.write

        def write(fd, data):
            if not self.on:
                return real(fd, data)
            if len(data) > 1:
                return real(fd, memoryview(data)[:len(data) // 2])
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(persistent_queue.os, "write", write)


def _queued_exporter(tmp_path, sink, telemetry):
    from otelplug.sidecar.exporters import otlp
    from otelplug.sidecar.extensions import file_storage
    from tests.sidecar.helpers import make
    storage = make(file_storage.factory, {"directory": str(tmp_path / "storage")})
    storage.start(None)

    class Host:
        def extension(self, name):
            return storage

    exp = make(otlp.factories[0], {
        "endpoint": sink.grpc_endpoint, "tls": {"insecure": True},
        "retry_on_failure": {"initial_interval": "50ms", "max_elapsed_time": "0s"},
        "sending_queue": {"storage": "file_storage", "num_consumers": 1, "queue_size": 100}},
        telemetry=telemetry)
    exp.start(Host())
    return exp


def test_full_disk_under_a_persistent_queue_pushes_back_through_batch(tmp_path, monkeypatch):
    """Short writes: the exporter refuses (never acknowledges), batch keeps
    the data and refuses new data, no temporaries; once writes work again
    everything is delivered, each span once."""
    from otelplug.sidecar.consumer import Refused
    from otelplug.sidecar.processors import batch
    from otelplug.sidecar.telemetry import Telemetry
    from tests.otlp_sink import OTLPSink
    from tests.sidecar.helpers import counting_ack, make, records_from_spans, sdk_spans
    tel = Telemetry()
    disk = _ShortWrites(monkeypatch)
    with OTLPSink(http_enabled=False) as sink:
        exp = _queued_exporter(tmp_path, sink, tel)
        b = make(batch.factory, {"send_batch_size": 10, "timeout": "50ms"}, exp, telemetry=tel)
        b.start(None)
        ack, settled = counting_ack()
        spans = sdk_spans(10)
        b.consume(records_from_spans(spans, (ack,)))        # size trigger -> refused downstream
        lab = {"processor": "batch", "otel_signal": "traces"}
        with_refusal = lambda: tel.get("exporter_enqueue_failed_spans").value(exporter=EXP) == 10
        wait_for(with_refusal, 10, "the exporter to refuse")
        refused_new = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:          # batch keeps refusing new data meanwhile
            try:
                b.consume(records_from_spans(sdk_spans(1)))
            except Refused:
                refused_new += 1
                break
        assert refused_new == 1
        # the batch offers its data again while the disk is full: retries, not losses
        wait_for(lambda: tel.get("exporter_enqueue_retried_items").value(exporter=EXP,
                                                                          otel_signal="traces") >= 20,
                 10, "batch to offer the data again")
        assert settled == [] and sink.span_count() == 0
        store = next((tmp_path / "storage").iterdir())
        assert list(store.iterdir()) == []                  # no *.tmp, no short entry
        disk.on = False                                     # the disk has room again
        wait_for(lambda: sink.span_count() == 10, 20, "delivery once the disk has room")
        assert settled == [False]                           # acknowledged once, not as failed
        assert {s.span_id for s in sink.spans()} == {s.context.span_id.to_bytes(8, "big") for s in spans}
        b.shutdown()
        exp.shutdown()
        assert tel.get("processor_failed_items").value(**lab) == 0
        assert tel.get("exporter_send_failed_spans").value(exporter=EXP) == 0
        wait_for(lambda: list(store.iterdir()) == [], 10, "the sent entry to be removed")


def test_a_short_queue_entry_on_disk_is_dropped_and_counted(tmp_path):
    """An entry cut short (written by a version that did not check, or
    damaged on disk) is reported with its item count, and temporaries of
    a write cut short by a crash are removed at start."""
    from otelplug.sidecar.helpers.persistent_queue import PersistentQueue
    from otelplug.sidecar.telemetry import Telemetry
    from tests.otlp_sink import OTLPSink
    from tests.sidecar.helpers import records_from_spans, sdk_spans
    tel = Telemetry()
    store = tmp_path / "storage" / f"file_storage-exporter-{EXP}-traces"
    q = PersistentQueue(store, 10)
    assert q.put(records_from_spans(sdk_spans(201)).to_bytes(), items=201)
    assert q.put(records_from_spans(sdk_spans(5)).to_bytes(), items=5)
    first = sorted(store.glob("*.batch"))[0]
    whole = first.read_bytes()
    first.write_bytes(whole[:len(whole) // 2])              # cut short
    for i in range(60):
        (store / f"{900 + i:020d}.tmp").write_bytes(b"")
    with OTLPSink(http_enabled=False) as sink:
        exp = _queued_exporter(tmp_path, sink, tel)
        assert not list(store.glob("*.tmp"))
        wait_for(lambda: sink.span_count() == 5, 20, "the intact entry")
        wait_for(lambda: tel.get("exporter_send_failed_spans").value(exporter=EXP) == 201, 10,
                 "the short entry's 201 spans to be counted")
        exp.shutdown()
    assert not list(store.iterdir())


# -- #18 item 10: listen backlog, non-object JSON ----------------------------------

def _otlp_receiver(extra_http=None, consumer=None, telemetry=None, receiver_config=None):
    """A started otlp receiver (HTTP on a free port) feeding ``consumer``."""
    from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
    from otelplug.sidecar.config.decode import decode
    from otelplug.sidecar.receivers import otlp
    from otelplug.sidecar.telemetry import Telemetry
    from tests.sidecar.helpers import Capture
    cfg = decode(otlp.factory.config, {
        "protocols": {"http": {"endpoint": "127.0.0.1:0", **(extra_http or {})}},
        **(receiver_config or {})})
    settings = CreateSettings(ComponentID("otlp"), Kind.RECEIVER, None, telemetry or Telemetry())
    rec = otlp.factory.create(settings, cfg, {"traces": consumer or Capture()})
    rec.start(None)
    return rec


def _burst_of_connections(address: str, path: str, method: bytes, body: bytes, n: int = 300):
    """Open ``n`` connections at once, then send one request on each;
    returns the status lines (or the error) of each."""
    import socket
    host, port = address.rsplit(":", 1)
    socks, out = [], []
    # one deadline for the whole burst: generous (it takes ~2 s here), but
    # far below the ~90 s that SYN/ACK retransmits (1 s, 3 s, 7 s, ...) cost
    # 300 clients when the accept queue holds 5 (the old backlog)
    deadline = time.monotonic() + 30

    def left():
        return max(0.01, deadline - time.monotonic())

    for _ in range(n):
        s = socket.socket()
        s.settimeout(left())
        try:
            s.connect((host, int(port)))
            socks.append(s)
        except OSError as exc:
            out.append(repr(exc))
            s.close()
    req = (method + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    for s in socks:
        try:
            s.sendall(req)
        except OSError as exc:
            out.append(repr(exc))
    for s in socks:
        try:
            s.settimeout(left())
            out.append(s.recv(64).split(b"\r\n", 1)[0].decode())
        except OSError as exc:
            out.append(repr(exc))
        finally:
            s.close()
    return out


def test_300_simultaneous_connections_are_all_answered():
    """#18 item 10: with socketserver's backlog of 5 some of 300 new
    connections were reset; both HTTP servers now listen with 1024."""
    from otelplug.sidecar.helpers.http_server import GetServer, Response
    rec = _otlp_receiver()
    get = GetServer("127.0.0.1:0", lambda *a: Response(body=b"ok"), "test-get").start()
    try:
        answers = _burst_of_connections(rec.http_address, "/v1/traces", b"POST", b"{}")
        assert answers.count("HTTP/1.1 200 OK") == 300, sorted(set(answers))
        answers = _burst_of_connections(get.address, "/", b"GET", b"")
        assert answers.count("HTTP/1.0 200 OK") + answers.count("HTTP/1.1 200 OK") == 300, \
            sorted(set(answers))
    finally:
        get.shutdown()
        rec.shutdown()


def test_non_object_otlp_json_is_a_400_naming_the_problem():
    import urllib.error
    import urllib.request
    rec = _otlp_receiver()
    try:
        for body, kind in ((b"[]", "an array"), (b"1", "a number"), (b'"x"', "a string"),
                           (b"null", "null")):
            req = urllib.request.Request(f"http://{rec.http_address}/v1/traces", data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=10)
                raise AssertionError(f"{body!r} accepted")
            except urllib.error.HTTPError as exc:
                assert exc.code == 400
                assert f"must be a JSON object, got {kind}" in json.loads(exc.read())["message"]
    finally:
        rec.shutdown()


# -- #18 "also decide": ack: durable ---------------------------------------------

def _otlp_client_until_error(address: str, spans_per_request: int, threads: int):
    """Threads POSTing OTLP/HTTP trace requests with random span ids until
    the server goes away; returns (acked span ids, lock, threads)."""
    import http.client
    import os
    import threading

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    acked: list[str] = []
    lock = threading.Lock()
    host, port = address.rsplit(":", 1)

    def run():
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while True:
            req = ExportTraceServiceRequest()
            ss = req.resource_spans.add().scope_spans.add()
            ids = []
            for _ in range(spans_per_request):
                s = ss.spans.add(name="durable", trace_id=os.urandom(16), span_id=os.urandom(8),
                                 start_time_unix_nano=1, end_time_unix_nano=2)
                ids.append(s.span_id.hex())
            try:
                conn.request("POST", "/v1/traces", req.SerializeToString(),
                             {"Content-Type": "application/x-protobuf"})
                r = conn.getresponse()
                r.read()
            except OSError:
                return                       # the sidecar is gone
            if r.status == 200:
                with lock:
                    acked.extend(ids)

    ts = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    return acked, lock, ts


def persistent_queue_config(receiver: str, batch: str, endpoint: str, queue_size: int, storage,
                            metrics_port: int) -> str:
    """receiver -> batch -> otlp exporter with a persistent queue; ``receiver``
    is ``id: {config}`` in flow style."""
    return f"""
receivers:
  {receiver}
processors:
  batch: {batch}
exporters:
  {otlp_exporter(endpoint, f"{{storage: file_storage, queue_size: {queue_size}}}")}
extensions:
  file_storage: {{directory: {storage}}}
service:
  extensions: [file_storage]
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}
  pipelines:
    traces: {{receivers: [{receiver.split(":")[0]}], processors: [batch], exporters: [otlp]}}
"""


def _durable_config(ack, http_port, sink, storage, metrics_port):
    return persistent_queue_config(
        f"otlp: {{protocols: {{http: {{endpoint: '127.0.0.1:{http_port}'}}}}, ack: {ack}}}",
        "{send_batch_size: 100000, timeout: 500ms}", sink.grpc_endpoint, 100000, storage, metrics_port)


def _sigkill_with_requests_in_flight(tmp_path, ack):
    """OTLP clients send while the destination is down; the sidecar is
    SIGKILLed; a new one (destination up) sends what survived.  Returns
    (span ids answered 200, span ids that arrived)."""
    from tests.otlp_sink import OTLPSink
    with OTLPSink(http_enabled=False) as sink:
        sink.fail(seconds=3600)
        http_port, metrics_port = free_port(), free_port()
        storage = tmp_path / "storage"
        cfg = _durable_config(ack, http_port, sink, storage, metrics_port)
        first = start_sidecar(tmp_path, cfg, "first")
        try:
            wait_listening(http_port)
            acked, lock, threads = _otlp_client_until_error(f"127.0.0.1:{http_port}", 50, 8)
            wait_for(lambda: len(acked) >= 2000, 60, "requests to be answered")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        for t in threads:
            t.join(30)
        with lock:
            answered = set(acked)
        sink.fail()
        second = start_sidecar(tmp_path, cfg, "second")
        try:
            if ack == "durable":
                wait_for(lambda: answered <= {s.span_id.hex() for s in sink.spans()}, 60,
                         "every acknowledged span to arrive")
            else:
                # what the first sidecar's queue held arrives; then nothing more comes
                wait_metrics(metrics_port)
                wait_for(lambda: scrape(metrics_port).get(
                    'otelplug_exporter_queue_size{exporter="otlp"}', 1) == 0, 60, "the queue to drain")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
        return answered, {s.span_id.hex() for s in sink.spans()}


def test_durable_ack_loses_no_acknowledged_span_on_sigkill(tmp_path):
    answered, arrived = _sigkill_with_requests_in_flight(tmp_path, "durable")
    assert answered and answered <= arrived


def test_default_ack_loses_what_the_batch_buffer_held_on_sigkill(tmp_path):
    """The documented contrast: answered on acceptance, the spans in the
    batch buffer (up to its 500 ms timeout) die with the process."""
    answered, arrived = _sigkill_with_requests_in_flight(tmp_path, "accepted")
    assert answered - arrived


# -- #18 item 3: memory_limiter on what is held, bodies bounded before reading ----

def test_memory_limiter_refuses_while_the_queue_holds_data_and_admits_once_it_drains():
    """A slow destination: the exporter's queue fills, the limiter refuses
    (the data would wait in the rings); the destination comes back, the
    queue drains, the held bytes drop and the limiter admits again, with
    the process's RSS no lower than before (the old limiter latched)."""
    from otelplug.sidecar.consumer import Refused
    from otelplug.sidecar.exporters import otlp
    from otelplug.sidecar.memory import HELD
    from otelplug.sidecar.processors import batch, memory_limiter
    from otelplug.sidecar.telemetry import Telemetry
    from tests.otlp_sink import OTLPSink
    from tests.sidecar.helpers import make, records_from_spans, sdk_spans
    tel = Telemetry()
    chunk = records_from_spans(sdk_spans(2000, attrs={"pad": "x" * 400}))    # ~1 MiB
    with OTLPSink(http_enabled=False) as sink:
        sink.fail(seconds=3600)
        exp = make(otlp.factories[0], {
            "endpoint": sink.grpc_endpoint, "tls": {"insecure": True},
            "retry_on_failure": {"initial_interval": "50ms", "max_interval": "200ms",
                                 "max_elapsed_time": "0s"},
            "sending_queue": {"num_consumers": 1, "queue_size": 1000}}, telemetry=tel)
        b = make(batch.factory, {"send_batch_size": 2000, "timeout": "50ms"}, exp, telemetry=tel)
        lim = make(memory_limiter.factory, {"check_interval": "20ms", "limit_mib": 5, "spike_limit_mib": 1},
                   b, telemetry=tel)
        for c in (exp, b, lim):
            c.start(None)
        base = HELD.total
        accepted = 0
        try:
            deadline = time.monotonic() + 30
            while True:                      # offer until the limiter pushes back
                assert time.monotonic() < deadline, "the limiter never refused"
                try:
                    lim.consume(chunk.detach())
                    accepted += chunk.items
                except Refused:
                    break
                time.sleep(0.03)
            assert HELD.total - base >= 4 << 20 and lim.refusing
            held_then = HELD.total
            sink.fail()                      # the destination keeps up again
            wait_for(lambda: not lim.refusing, 30, "the limiter to admit again")
            assert HELD.total < held_then
            lim.consume(chunk.detach())
            accepted += chunk.items
            wait_for(lambda: sink.span_count() == accepted, 30, "every accepted span to arrive")
        finally:
            for c in (lim, b):
                c.shutdown()
            exp.shutdown()
    assert tel.get("processor_refused_items").value(processor="memory_limiter",
                                                    otel_signal="traces") >= chunk.items
    assert HELD.total == base


_BIG_BODY_CONFIG = """
receivers:
  otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{http_port}}}}}}}
processors:
  memory_limiter: {{check_interval: 50ms, limit_mib: 128}}
  batch: {{send_batch_size: 8192, timeout: 100ms}}
exporters:
  debug: {{}}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics_port}}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [memory_limiter, batch], exporters: [debug]}}
"""


def _big_trace_request(mib: int) -> tuple[bytes, int]:
    import os

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    n = 0
    while req.ByteSize() < mib << 20:
        for _ in range(1000):
            s = ss.spans.add(name="big", trace_id=os.urandom(16), span_id=os.urandom(8),
                             start_time_unix_nano=1, end_time_unix_nano=2)
            for k in range(8):
                a = s.attributes.add(key=f"attr{k}")
                a.value.string_value = "v" * 20
            n += 1
    return req.SerializeToString(), n


def _post_until_accepted(url: str, body: bytes, deadline: float) -> int:
    """POST, retrying 503s as OTLP clients do; returns the number of 503s."""
    import urllib.error
    import urllib.request
    refusals = 0
    while True:
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/x-protobuf"})
        try:
            urllib.request.urlopen(req, timeout=120).read()
            return refusals
        except urllib.error.HTTPError as exc:
            assert exc.code == 503, exc.code
            refusals += 1
        assert time.monotonic() < deadline, "never accepted"
        time.sleep(0.2)


def test_concurrent_large_bodies_stay_bounded_and_the_limiter_recovers(tmp_path):
    """16 concurrent 8 MiB OTLP/HTTP bodies into a 128 MiB-limited sidecar
    (the issue: 40 x 19 MiB took a 512 MiB one to 1,177 MB, then it refused
    everything for 45 s).  Each request's memory is reserved before the
    body is read: the peak stays near one or two requests' worth, every
    request is accepted in the end, and afterwards the sidecar admits at
    once (no latch)."""
    import threading

    import psutil
    http_port, metrics_port = free_port(), free_port()
    sidecar = start_sidecar(tmp_path, _BIG_BODY_CONFIG.format(http_port=http_port,
                                                              metrics_port=metrics_port))
    try:
        wait_listening(http_port)
        proc = psutil.Process(sidecar.pid)
        base_rss = proc.memory_info().rss
        body, spans = _big_trace_request(8)
        url = f"http://127.0.0.1:{http_port}/v1/traces"
        deadline = time.monotonic() + 300
        refusals = []
        errors = []

        def client():
            try:
                refusals.append(_post_until_accepted(url, body, deadline))
            except BaseException as exc:     # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len(refusals) == 16 and sum(refusals) > 0     # some had to wait their turn
        peak = int(next(line.split()[1] for line in open(f"/proc/{sidecar.pid}/status")
                        if line.startswith("VmHWM:"))) << 10
        # 16 requests at once would need 16 x ~56 MiB; one or two at a time fit here
        assert peak - base_rss < 400 << 20, (peak - base_rss) >> 20
        m = wait_for(lambda: (lambda m: m if metric(m, "otelplug_receiver_accepted_spans_total",
                                                      receiver="otlp", transport="http") == 16 * spans
                              else None)(scrape(metrics_port)), 60, "every span to be accepted")
        # no latch: a request right after the burst is accepted on its first try
        assert _post_until_accepted(url, _big_trace_request(1)[0], time.monotonic() + 30) == 0
        assert m.get('otelplug_memory_held_bytes{holder="receiver/otlp/http"}', 0) == 0
    finally:
        sidecar.send_signal(signal.SIGTERM)
        assert sidecar.wait(30) == 0


def test_batch_retry_through_a_fan_out_settles_each_ack_once():
    """One branch takes the batch, the other refuses it: batch keeps it and
    offers it again to both; the source's ack settles exactly once, after
    the refusing branch finally took it, never twice or early."""
    from otelplug.sidecar.consumer import Consumer, FanOut, Refused
    from otelplug.sidecar.processors import batch
    from tests.sidecar.helpers import Capture, counting_ack, make, records_from_spans, sdk_spans

    class RefusesTwice(Consumer):
        def __init__(self):
            self.refusals, self.got = 0, []

        def consume(self, records):
            if self.refusals < 2:
                self.refusals += 1
                raise Refused("full")
            self.got.append(records)
            records.settle()

    taker, refuser = Capture(), RefusesTwice()
    b = make(batch.factory, {"send_batch_size": 5, "timeout": "10s"}, FanOut([taker, refuser]))
    b.start(None)
    ack, settled = counting_ack()
    b.consume(records_from_spans(sdk_spans(5), (ack,)))
    wait_for(lambda: refuser.got, 10, "the refusing branch to take the batch")
    b.shutdown()
    assert settled == [False]                  # once, not as failed
    assert len(taker.got) == 3                 # at-least-once: the taking branch got each offer


def test_grpc_requests_are_refused_retryably_while_the_pipelines_hold_the_limit():
    """OTLP/gRPC: a request's decoding cost is reserved against the limit
    before it is parsed; over it, UNAVAILABLE (retryable), and accepted
    again once the held bytes drop."""
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
    from otelplug.sidecar.config.decode import decode
    from otelplug.sidecar.memory import HELD
    from otelplug.sidecar.receivers import otlp
    from otelplug.sidecar.telemetry import Telemetry
    from tests.sidecar.helpers import Capture
    cap = Capture()
    cfg = decode(otlp.factory.config, {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}})
    rec = otlp.factory.create(CreateSettings(ComponentID("otlp"), Kind.RECEIVER, None, Telemetry()),
                              cfg, {"traces": cap})
    rec.start(None)
    owner = object()
    HELD.set_limit(owner, 1 << 20)              # as a running memory_limiter would
    held = [1 << 20]
    HELD.add("processor/test/traces", held[0])  # ... with its pipeline full
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.add(
        name="x", trace_id=b"\x01" * 16, span_id=b"\x02" * 8, start_time_unix_nano=1, end_time_unix_nano=2)
    try:
        with grpc.insecure_channel(rec.grpc_address) as ch:
            export = ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            try:
                export(req.SerializeToString(), timeout=10)
                raise AssertionError("accepted over the limit")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            assert cap.items == 0
            HELD.sub("processor/test/traces", held.pop())   # the pipeline drained
            export(req.SerializeToString(), timeout=10)
            assert cap.items == 1
    finally:
        for n in held:
            HELD.sub("processor/test/traces", n)
        HELD.clear_limit(owner)
        rec.shutdown()
    assert HELD.by_holder().get("receiver/otlp/grpc", 0) == 0


def test_sidecar_on_a_full_disk_keeps_ring_data_until_the_disk_has_room(tmp_path):
    """#18 items 2 and 8 with a real sidecar: its file size limit (RLIMIT_FSIZE,
    set from outside with prlimit) makes every persistent-queue write come
    out short, as a full disk does.  Nothing is acknowledged or dropped: the
    spans wait in the ring; once the limit is lifted all of them arrive."""
    import resource

    from tests.otlp_sink import OTLPSink
    limit = 4 << 10           # below one batch of spans (a few hundred bytes each)
    metrics_port = free_port()
    storage = tmp_path / "storage"
    with OTLPSink(http_enabled=False) as sink:
        cfg = tmp_path / "disk.yaml"
        cfg.write_text(persistent_queue_config("shm: {channels: [disk]}",
                                               "{send_batch_size: 200, timeout: 100ms}",
                                               sink.grpc_endpoint, 100, storage, metrics_port))
        # stdout to /dev/null: the limit applies to the log file too
        sidecar = subprocess.Popen(
            [sys.executable, "-m", "otelplug.cli.main", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # the soft limit only: lifting it again needs no privilege
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                                  (limit, resource.RLIM_INFINITY)))
        producer = None
        try:
            wait_metrics(metrics_port)
            producer = start_producer("disk", 1000)
            # refused once (enqueue_failed), then offered again by batch (retried)
            retried = lambda: metric(scrape(metrics_port), "otelplug_exporter_enqueue_retried_items_total",
                                     exporter="otlp", otel_signal="traces")
            wait_for(lambda: retried() > 0, 60, "the exporter to refuse short writes")
            in_ring = lambda: sum(v for k, v in scrape(metrics_port).items()
                                  if k.startswith("otelplug_ring_pending_bytes{"))
            wait_for(lambda: in_ring() >= 1000 * 200, 60, "spans to wait in the ring")
            queue_dir = next(storage.iterdir())
            assert not list(queue_dir.glob("*.tmp"))
            assert all(p.stat().st_size <= limit for p in queue_dir.glob("*.batch"))
            resource.prlimit(sidecar.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))   # room again
            result = stop_producer(producer)
            producer = None
            expected = set(result["span_ids"])
            assert result["dropped"] == 0 and len(expected) >= 500
            wait_for(lambda: expected <= {s.span_id.hex() for s in sink.spans()}, 60,
                     f"all {len(expected)} spans to arrive")
            m = scrape(metrics_port)
            assert metric(m, "otelplug_exporter_send_failed_spans_total", exporter="otlp") == 0
            assert metric(m, "otelplug_processor_failed_items_total", processor="batch",
                          otel_signal="traces") == 0
        finally:
            if producer is not None and producer.poll() is None:
                producer.kill()
            sidecar.send_signal(signal.SIGTERM)
            assert sidecar.wait(30) == 0
