"""SIGHUP with a config that cannot be used (issue 18, item 4): a real
sidecar keeps serving OTLP and draining rings across the failed reload,
counts the failure, logs where the config is wrong, and loses nothing
acknowledged or committed.  Also: a good reload that moves the OTLP port
starts the new listener before the old one closes, a reload whose late
start fails rolls back to the old graph, a port conflict at start names the
component and the address, and SIGTERM exits promptly."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                       ExportTraceServiceResponse)
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.otlp_sink import OTLPSink

from .test_reliability import (free_port, scrape, sink_span_ids, start_producer, start_sidecar,
                               stop_producer, wait_metrics)
from .test_service import wait_log

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _config(channel, sink, mport, gport):
    return f"""
receivers:
  shm: {{channels: [{channel}]}}
  otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:{gport}}}}}}}
processors: {{batch: {{timeout: 100ms}}}}
exporters:
  otlp: {{endpoint: {sink.grpc_endpoint}, tls: {{insecure: true}}}}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{mport}}}}}
  pipelines:
    traces: {{receivers: [shm, otlp], processors: [batch], exporters: [otlp]}}
"""


class OTLPClient:
    """Sends spans with known ids to the sidecar's OTLP/gRPC port and
    remembers the ones acknowledged."""

    def __init__(self):
        self.acked: set[str] = set()
        self._next = 1

    def send(self, port: int, spans: int = 50, timeout: float = 10) -> None:
        req = ExportTraceServiceRequest()
        ss = req.resource_spans.add().scope_spans.add()
        ids = []
        for _ in range(spans):
            sid = self._next.to_bytes(8, "big")
            self._next += 1
            ss.spans.add(trace_id=b"\x01" * 16, span_id=sid, name="otlp-client",
                         start_time_unix_nano=1, end_time_unix_nano=2)
            ids.append(sid.hex())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            call = ch.unary_unary(EXPORT, request_serializer=ExportTraceServiceRequest.SerializeToString,
                                  response_deserializer=ExportTraceServiceResponse.FromString)
            call(req, timeout=timeout)
        self.acked.update(ids)


class OTLPStream:
    """Keeps sending small OTLP requests from a thread (across a reload);
    every one must be acknowledged."""

    def __init__(self, client: OTLPClient, port: int):
        self.client, self.port = client, port
        self.errors: list = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.client.send(self.port, spans=5)
                self.sent += 1
            except grpc.RpcError as exc:
                self.errors.append(exc.code())
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def _failures(mport, reason) -> float:
    return scrape(mport).get(f'otelplug_config_reload_failures_total{{reason="{reason}"}}', 0.0)


def _wait_failures(mport, reason, n, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _failures(mport, reason) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"config_reload_failures{{reason={reason}}} never reached {n}")


def _bomb() -> str:
    lines = ['a0: &a0 ["lol"' + ',"lol"' * 8 + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def busy_port():
    """A port another process-like owner is listening on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


# case -> (what to write into the config file, reason label, text the log must show)
CASES = {
    "binary": (lambda ctx: bytes(range(256)) * 8, "config", "the config is not UTF-8 text: byte 0x80"),
    "python-tag": (lambda ctx: (ctx["good"] + f"extra: !!python/object/apply:os.system "
                                f"['touch {ctx['marker']}']\n").encode(),
                   "config", "could not determine a constructor for the tag"),
    "port-in-use": (lambda ctx: ctx["good"].replace(f"127.0.0.1:{ctx['gport']}",
                                                    f"127.0.0.1:{ctx['busy']}").encode(),
                    "start", "receivers::otlp: cannot listen on 127.0.0.1:{busy}: Address already in use"),
    "billion-laughs": (lambda ctx: _bomb().encode(), "config", "expands to more than 100,000 nodes"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_failed_reload_keeps_serving_and_loses_nothing(tmp_path, case, busy_port):
    content, reason, expected_log = CASES[case]
    with OTLPSink(http_enabled=False) as sink:
        mport, gport = free_port(), free_port()
        good = _config(f"hup{case.replace('-', '')}", sink, mport, gport)
        ctx = {"good": good, "gport": gport, "busy": busy_port, "marker": tmp_path / "pwned"}
        sidecar = start_sidecar(tmp_path, good, "hup")
        client = OTLPClient()
        try:
            wait_metrics(mport)
            producer = start_producer(f"hup{case.replace('-', '')}", 300)
            client.send(gport)
            stream = OTLPStream(client, gport)      # OTLP requests all across the reload
            (tmp_path / "hup.yaml").write_bytes(content(ctx))
            t0 = time.monotonic()
            sidecar.send_signal(signal.SIGHUP)
            _wait_failures(mport, reason, 1)
            took = time.monotonic() - t0
            assert sidecar.poll() is None
            client.send(gport)                      # the same listener still answers
            stream.stop()
            assert stream.errors == [] and stream.sent > 0
            result = stop_producer(producer)
            expected = set(result["span_ids"]) | client.acked
            assert sink.wait_for(lambda: expected <= set(sink_span_ids(sink)), timeout=30), \
                f"missing {len(expected - set(sink_span_ids(sink)))} of {len(expected)}"
            assert result["ring"]["dropped_full"] == 0
        finally:
            sidecar.send_signal(signal.SIGTERM)
            assert sidecar.wait(30) == 0
        log = (tmp_path / "hup.log").read_text()
        assert expected_log.format(busy=busy_port) in log, log[-2000:]
        assert f"{tmp_path / 'hup.yaml'}:" in log or case == "port-in-use"
        assert "Traceback" not in log and "reload: done" not in log
        assert not (tmp_path / "pwned").exists()
        print(f"{case}: failure detected {took:.2f}s after SIGHUP")


def test_reload_moving_the_otlp_port_starts_new_before_old_stops(tmp_path):
    with OTLPSink(http_enabled=False) as sink:
        mport, gport, gport2 = free_port(), free_port(), free_port()
        good = _config("hupmove", sink, mport, gport)
        sidecar = start_sidecar(tmp_path, good, "move")
        client = OTLPClient()
        try:
            wait_metrics(mport)
            producer = start_producer("hupmove", 300)
            client.send(gport)
            (tmp_path / "move.yaml").write_text(good.replace(f":{gport}", f":{gport2}"))
            sidecar.send_signal(signal.SIGHUP)
            wait_log(tmp_path / "move.log", "reload: done", 1)
            client.send(gport2)
            with pytest.raises(grpc.RpcError):      # the old listener is gone
                client.send(gport, timeout=2)
            result = stop_producer(producer)
            expected = set(result["span_ids"]) | client.acked
            assert sink.wait_for(lambda: expected <= set(sink_span_ids(sink)), timeout=30)
            m = scrape(mport)                       # the same metrics socket, counters kept
            assert m["otelplug_config_reloads_total"] == 1
        finally:
            sidecar.send_signal(signal.SIGTERM)
            assert sidecar.wait(30) == 0
        log = (tmp_path / "move.log").read_text()
        # the new listener came up before the old graph was stopped; the
        # shm receiver (same channel) waited for it
        new_up = log.index(f"OTLP/gRPC on 127.0.0.1:{gport2}")
        assert new_up < log.index("reload: stopping the previous pipelines") < log.index("reload: done")
        assert "reload: after the previous pipelines stop (they hold what these need): receivers::shm" in log
        # what runs is logged at start and after the reload (issue 13)
        for text in ("pipeline traces: shm, otlp -> batch -> otlp", "shm channel hupmove (receivers::shm)",
                     f"endpoint 127.0.0.1:{mport} (service::telemetry::metrics)",
                     f"endpoint 127.0.0.1:{gport} (receivers::otlp)"):
            assert log.count(text) == (2 if "otlp)" not in text else 1), text
        assert log.count(f"endpoint 127.0.0.1:{gport2} (receivers::otlp)") == 1


def test_late_start_failure_rolls_back_to_the_old_graph(tmp_path, shm_dir):
    """The new config's exporter shares the old file_storage directory, so
    it starts only after the old graph stopped, and then fails: the old
    config is started again and keeps delivering."""
    from opentelemetry.sdk.trace import TracerProvider

    from otelplug import ShmSpanProcessor
    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.factories import Registry
    from otelplug.sidecar.reload import ReloadFailed, replace
    from otelplug.sidecar.service import Service
    storage, out = tmp_path / "storage", tmp_path / "spans.jsonl"

    def cfg(exporter):
        return load("r.yaml", Registry.default(), text=f"""
receivers: {{shm: {{channels: [rollback]}}}}
exporters:
  {exporter}: {{path: {out}, sending_queue: {{storage: file_storage}}}}
extensions: {{file_storage: {{directory: {storage}}}}}
service:
  extensions: [file_storage]
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], exporters: [{exporter}]}}
""")
    old = Service(cfg("file"))
    old.start()
    running = old
    try:
        (storage / "file_storage-exporter-file_new-traces").write_text("not a directory")
        with pytest.raises(ReloadFailed) as ei:
            replace(old, cfg("file/new"))
        running = ei.value.running
        assert running is not old and running.config is old.config
        msg = str(ei.value)
        assert msg.startswith("exporters::file/new: cannot start:") and "previous configuration was restored" in msg
        tp = TracerProvider()
        tp.add_span_processor(ShmSpanProcessor("rollback"))
        for i in range(20):
            with tp.get_tracer("t").start_as_current_span(f"s{i}"):
                pass
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count('"name"') < 20):
            time.sleep(0.05)
        assert out.read_text().count('"name"') >= 20
    finally:
        running.shutdown()


def test_port_conflict_at_start_names_component_and_address(tmp_path, busy_port):
    with OTLPSink(http_enabled=False) as sink:
        mport = free_port()
        cfg = _config("conflict", sink, mport, free_port()) + f"""
extensions: {{health_check: {{endpoint: 127.0.0.1:{busy_port}}}}}
""".replace("service:\n", "")
        cfg = cfg.replace("service:\n", "service:\n  extensions: [health_check]\n", 1)
        (tmp_path / "c.yaml").write_text(cfg)
        r = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "run", "--config",
                            str(tmp_path / "c.yaml")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert (f"cannot start: extensions::health_check: cannot start: [Errno 98] health_check: "
            f"cannot listen on 127.0.0.1:{busy_port}: Address already in use") in r.stderr, r.stderr


def test_sigterm_exits_soon_after_stopped(tmp_path):
    """Waits for the exit state with a generous deadline; the time is
    printed (before the fix: ~1.05 s from SIGTERM to exit here, 2.1-2.7 s
    reported on a loaded machine; after: ~0.3 s)."""
    with OTLPSink(http_enabled=False) as sink:
        mport, gport, hport = free_port(), free_port(), free_port()
        cfg = _config("sigterm", sink, mport, gport).replace(
            "service:\n", f"extensions: {{health_check: {{endpoint: 127.0.0.1:{hport}}}}}\n"
                          "service:\n  extensions: [health_check]\n")
        sidecar = start_sidecar(tmp_path, cfg, "term")
        wait_metrics(mport)
        t0 = time.monotonic()
        sidecar.send_signal(signal.SIGTERM)
        assert sidecar.wait(30) == 0
        took = time.monotonic() - t0
    log = (tmp_path / "term.log").read_text()
    assert log.rstrip().endswith("stopped"), log[-500:]
    print(f"SIGTERM to exit: {took:.2f}s")


def test_unusable_file_storage_directory_names_the_component(tmp_path):
    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.factories import Registry
    from otelplug.sidecar.service import Service, StartError
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    svc = Service(load("s.yaml", Registry.default(), text=f"""
receivers: {{shm: {{channels: [storage]}}}}
exporters: {{debug: }}
extensions: {{file_storage/q: {{directory: {blocker}/sub}}}}
service:
  extensions: [file_storage/q]
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [shm], exporters: [debug]}}
"""))
    with pytest.raises(StartError) as ei:
        svc.start()
    svc.shutdown()
    assert str(ei.value) == f"extensions::file_storage/q: cannot use directory {blocker}/sub: Not a directory"


def test_reload_keeps_the_metrics_socket_and_drops_old_callbacks(tmp_path):
    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.factories import Registry
    from otelplug.sidecar.reload import replace
    from otelplug.sidecar.service import Service
    mport = free_port()

    def cfg(name):
        return load("m.yaml", Registry.default(), text=f"""
receivers: {{shm: {{channels: [metricshandover]}}}}
processors: {{batch: }}
exporters: {{file: {{path: {tmp_path / name}}}}}
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{mport}}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [batch], exporters: [file]}}
""")
    svc = Service(cfg("a.jsonl"))
    svc.start()
    try:
        server = svc.metrics_server
        callbacks = len(svc.telemetry._collectors)
        for name in ("b.jsonl", "c.jsonl", "d.jsonl"):
            svc = replace(svc, cfg(name))
            assert svc.metrics_server is server            # handed over, never closed
            assert len(svc.telemetry._collectors) == callbacks
            assert "otelplug_ring_producers" in "".join(scrape(mport))
    finally:
        svc.shutdown()


def test_two_listeners_on_one_address_are_refused_before_starting(tmp_path):
    from otelplug.sidecar.config.model import load
    from otelplug.sidecar.factories import Registry
    from otelplug.sidecar.service import Service, StartError
    port = free_port()
    with pytest.raises(StartError) as ei:
        Service(load("d.yaml", Registry.default(), text=f"""
receivers: {{otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:{port}}}}}}}}}
exporters: {{debug: }}
extensions: {{health_check: {{endpoint: 127.0.0.1:{port}}}}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{level: none}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [debug]}}
"""))
    assert str(ei.value) == (f"receivers::otlp: cannot listen on 127.0.0.1:{port}: "
                             "extensions::health_check listens there too")
