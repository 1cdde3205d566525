"""The status page end to end in Debian's headless Chromium (driven by
Playwright, no browser download): live charts fill from a real sidecar
under SDK traffic, exporter failures show as unhealthy with the reason,
findings are listed; screenshots are kept in tests/artifacts/api/."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.otlp_sink import OTLPSink
from tests.requirements import missing
from tests.sidecar.test_reliability import free_port

from .sidecar import ROOT, TOKENS, call, config, send_spans, sidecar, wait_api, wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "tests" / "artifacts" / "api"


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        missing("Debian's chromium at /usr/bin/chromium", "apt-get install chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def test_status_page_live(tmp_path, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with OTLPSink(http_enabled=False) as sink:
        api, otlp = free_port(), free_port()
        with sidecar(tmp_path, config(api, otlp, sink.grpc_endpoint)) as p:
            wait_api(api, p, tmp_path / "sidecar.log")
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            outside = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
                f"http://127.0.0.1:{api}/") else None)
            page.goto(f"http://127.0.0.1:{api}/#token={TOKENS['reader']}")
            page.wait_for_selector("#health.healthy", timeout=20000)
            deadline = time.monotonic() + 20
            for i in range(4):        # traffic over a few seconds: the charts get several points
                send_spans(otlp, "checkout", n_ok=20, n_err=5)
                send_spans(otlp, "payments", n_ok=10, n_err=0)
                page.wait_for_timeout(700)
            # lines per service appear in the error-rate and p95 charts, spans/s has its line
            page.wait_for_selector('#chart-spans path.line', state='attached', timeout=20000)
            page.wait_for_selector('#chart-p95 path[data-series="checkout"]', state='attached', timeout=20000)
            page.wait_for_selector('#chart-errors path[data-series="payments"]', state='attached', timeout=20000)
            page.wait_for_selector('#findings td:text("http.method")', timeout=20000)
            page.wait_for_selector('#exporters td:text("exporters::otlp")', timeout=20000)
            assert "traces" in page.inner_text("#pipelines")
            page.screenshot(path=str(ARTIFACTS / "status-healthy.png"), full_page=True)
            # sections for what is not running stay hidden
            assert page.is_hidden("#alerts-section") and page.is_hidden("#graph-section")
            assert page.is_hidden("#trace-section")

            # exports start failing: the page turns unhealthy and says which exporter and why
            sink.stop()
            send_spans(otlp, "checkout", n_ok=5, n_err=0)
            page.wait_for_selector("#health.unhealthy", timeout=30000)
            problem = page.inner_text("#problems")
            assert "exporters::otlp" in problem and "failed to export" in problem
            page.screenshot(path=str(ARTIFACTS / "status-unhealthy.png"), full_page=True)
            assert not outside, f"the page fetched from elsewhere: {outside}"
            assert time.monotonic() < deadline + 120
            # without a token the page says what is wrong
            page2 = browser.new_page()
            page2.evaluate("() => 0")
            page2.goto(f"http://127.0.0.1:{api}/ui/index.html")
            page2.evaluate("() => localStorage.clear()")
            page2.reload()
            page2.wait_for_selector("#error:not([hidden])", timeout=20000)
            assert "401" in page2.inner_text("#error")


def test_trace_view_from_the_store(tmp_path, browser):
    """With a store, the page shows the trace section; a trace id draws its
    spans as a waterfall, an unknown one says so."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    api, otlp = free_port(), free_port()
    cfg = config(api, otlp, "127.0.0.1:1", store=str(tmp_path / "s.duckdb"))
    with sidecar(tmp_path, cfg) as p:
        wait_api(api, p, tmp_path / "sidecar.log")
        (trace_id,) = send_spans(otlp, "checkout", n_ok=1, n_err=0)
        wait_for(lambda: call(api, f"/api/v1/traces/{trace_id}", TOKENS["reader"])[0] == 200,
                 "the trace in the store", proc=p, log_path=tmp_path / "sidecar.log")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"http://127.0.0.1:{api}/#token={TOKENS['reader']}")
        page.wait_for_selector("#trace-section:not([hidden])", timeout=20000)
        page.fill("#trace-id", trace_id)
        page.click("#trace-form button")
        page.wait_for_selector("#trace rect.span", state="attached", timeout=20000)
        assert "checkout GET /secret/path" in page.text_content("#trace")
        page.screenshot(path=str(ARTIFACTS / "trace-view.png"), full_page=True)
        page.fill("#trace-id", "ab" * 16)
        page.click("#trace-form button")
        page.wait_for_selector("#trace-msg:text('not found')", timeout=20000)


def test_ring_charts_per_process(tmp_path, shm_dir, browser):
    """Producer processes writing through rings: the page charts each
    ring's pending bytes and drops per process, and lists them."""
    from tests.sidecar.test_reliability import start_producer, stop_producer
    api = free_port()
    cfg = f"""
receivers: {{shm: {{channels: [pagering]}}}}
processors: {{batch: {{timeout: 100ms}}}}
exporters: {{debug: {{}}}}
extensions:
  api: {{endpoint: 127.0.0.1:{api}, sample_interval: 200ms, tokens: [{{name: r, value: {TOKENS['reader']}, scopes: [read]}}]}}
service:
  extensions: [api]
  pipelines: {{traces: {{receivers: [shm], processors: [batch], exporters: [debug]}}}}
"""
    with sidecar(tmp_path, cfg) as p:
        wait_api(api, p, tmp_path / "sidecar.log")
        producer = start_producer("pagering", 500)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(f"http://127.0.0.1:{api}/#token={TOKENS['reader']}")
            series = f'pagering/{producer.pid}'
            page.wait_for_selector(f'#chart-ring-fill path[data-series="{series}"]', state="attached", timeout=30000)
            page.wait_for_selector(f'#chart-ring-drops path[data-series="{series}"]', state="attached", timeout=30000)
            page.wait_for_selector(f'#rings td:text("{producer.pid}")', timeout=30000)
            page.screenshot(path=str(ARTIFACTS / "rings.png"), full_page=True)
        finally:
            stop_producer(producer)
