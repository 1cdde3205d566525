"""The sidecar's HTTP API under ingest load: latency of ``/api/v1/status``
and ``/api/v1/public`` while 10k spans/s flow through the sidecar, next to
the sidecar's own ``/metrics`` endpoint (the stdlib GET server) measured in
the same run as the peer; and the sidecar's ingest CPU per span with and
without the status page polling once a second.  A benchmark, not a test.

Processes: the OTLP/gRPC sink and the SDK producer of
bench/sidecar_throughput.py (real SDK spans through ShmSpanProcessor at
--rate), and ``otelplug run`` with shm -> batch -> otlp + spanmetrics and
the api extension.

* Latency: a client requests /status, /public and /metrics in turn,
  --requests times each, 20 rounds/s, over keep-alive connections;
  p50/p99 per endpoint, and the ratio to /metrics.
* CPU: interleaved windows of --window seconds, "quiet" (no API requests)
  and "page" (what the status page fetches: status every second, findings
  every 5th); sidecar user+system CPU / spans the sink got.
  The rise is median(page) / median(quiet) - 1.

    python bench/api.py                 # ~2 min
    python bench/api.py --quick         # ~1 min
"""
from __future__ import annotations

import argparse
import http.client
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sidecar_throughput as st  # noqa: E402  (the sink, the producer, the window logic)

TOKEN = "bench-token-0123456789"
CONFIG = """\
receivers:
  shm: {{channels: [""]}}
processors:
  batch: {{send_batch_size: 8192, timeout: 200ms}}
exporters:
  otlp: {{endpoint: 127.0.0.1:{port}, tls: {{insecure: true}}, compression: none}}
connectors:
  spanmetrics: {{metrics_flush_interval: 10s}}
extensions:
  api:
    endpoint: 127.0.0.1:{api}
    anonymous_public: true
    tokens: [{{name: bench, value: {token}, scopes: [read]}}]
service:
  extensions: [api]
  telemetry: {{metrics: {{address: 127.0.0.1:{metrics}}}}}
  pipelines:
    traces: {{receivers: [shm], processors: [batch], exporters: [otlp, spanmetrics]}}
    metrics: {{receivers: [spanmetrics], exporters: [otlp]}}
"""
# what the status page fetches (static/app.js): status every second (the
# chart samples come with it after one /series), findings every 5th second
# (no alert engine or graph here)
PAGE = ["/api/v1/status"]
PAGE_SLOW = ["/api/v1/findings?limit=50"]


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, path) -> float:
        t0 = time.perf_counter()
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        r = self.conn.getresponse()
        r.read()
        dt = time.perf_counter() - t0
        if r.status not in (200, 404):
            raise RuntimeError(f"{path}: {r.status}")
        return dt


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def poller(port, stop: threading.Event):
    c = Client(port)
    tick = 0
    while not stop.wait(1.0):
        for path in PAGE + (PAGE_SLOW if tick % 5 == 0 else []):
            c.get(path)
        tick += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10_000, help="producer spans/s")
    ap.add_argument("--window", type=float, default=8.0, help="seconds per CPU window")
    ap.add_argument("--rounds", type=int, default=4, help="quiet/page window pairs")
    ap.add_argument("--requests", type=int, default=300, help="latency samples per endpoint")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.window, a.rounds, a.requests = 5.0, 2, 150
    import psutil

    print(f"# bench/api.py  rate={a.rate:.0f}/s window={a.window}s rounds={a.rounds} requests={a.requests}")
    print(f"# {platform.platform()}  cpus={os.cpu_count()}  load={os.getloadavg()}")
    bench = st.Bench(argparse.Namespace())
    shm_dir = tempfile.mkdtemp(prefix="otelplug-bench-shm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    api, metrics = st._free_port(), st._free_port()
    cfg = os.path.join(bench.tmp, "sidecar-api.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(port=bench.port, api=api, metrics=metrics, token=TOKEN))
    env = {**os.environ, "OTELPLUG_SHM_DIR": shm_dir}
    env.pop("OTELPLUG_CHANNEL", None)
    side = subprocess.Popen([sys.executable, "-m", "otelplug.cli.main", "run", "--config", cfg,
                             "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                Client(api).get("/api/v1/status")
                break
            except OSError:
                if time.monotonic() > deadline or side.poll() is not None:
                    raise RuntimeError("the sidecar's API did not come up")
                time.sleep(0.2)
        ps = psutil.Process(side.pid)
        total = 4.0 + a.rounds * 2 * (a.window + 1.5) + a.requests / 20 * 1.5 + 20
        q = bench.ctx.Queue()
        prod = bench.ctx.Process(target=st.producer, args=(shm_dir, "rate", a.rate, total, q))
        prod.start()
        time.sleep(4.0)

        # latency under load
        lat = {"/api/v1/status": [], "/api/v1/public": [], "/metrics": []}
        ca, cm = Client(api), Client(metrics)
        for _ in range(a.requests):
            t_next = time.perf_counter() + 0.05
            lat["/api/v1/status"].append(ca.get("/api/v1/status"))
            lat["/api/v1/public"].append(ca.get("/api/v1/public"))
            lat["/metrics"].append(cm.get("/metrics"))
            time.sleep(max(0.0, t_next - time.perf_counter()))

        # CPU per span, quiet and polled windows interleaved
        cpu = {"quiet": [], "page": []}
        for r in range(a.rounds):
            for mode in (("quiet", "page") if r % 2 == 0 else ("page", "quiet")):
                stop = threading.Event()
                t = threading.Thread(target=poller, args=(api, stop), daemon=True) if mode == "page" else None
                if t:
                    t.start()
                w = bench._window(ps, a.window)
                stop.set()
                if t:
                    t.join()
                cpu[mode].append(w)
        prod.terminate()
    finally:
        side.send_signal(signal.SIGTERM)
        _gone, alive = psutil.wait_procs([psutil.Process(side.pid)], timeout=30)
        for p in alive:
            p.kill()
        bench.close()
        shutil.rmtree(shm_dir, ignore_errors=True)

    print("\n## Latency under load (ms)")
    print(f"{'endpoint':<18} {'p50':>7} {'p99':>7} {'max':>7} {'p99 / metrics p99':>18}")
    mp99 = pct(lat["/metrics"], 99)
    for ep, xs in lat.items():
        print(f"{ep:<18} {pct(xs, 50) * 1e3:7.2f} {pct(xs, 99) * 1e3:7.2f} {max(xs) * 1e3:7.2f} "
              f"{pct(xs, 99) / mp99:18.2f}")
    print("\n## Sidecar CPU per span (us), median of windows")
    print(f"{'mode':<6} {'spans/s':>9} {'us/span':>8} {'cores':>6}")
    med = {}
    for mode, ws in cpu.items():
        med[mode] = st._med([w["us_per_span"] for w in ws])
        print(f"{mode:<6} {st._med([w['spans_per_s'] for w in ws]):9.0f} {med[mode]:8.2f} "
              f"{st._med([w['cores'] for w in ws]):6.3f}")
    rise = med["page"] / med["quiet"] - 1
    print(f"\ningest CPU rise while the page polls every second: {rise * 100:+.1f}%  (target <= 5%)")
    ok = pct(lat["/api/v1/status"], 99) <= 0.05 and pct(lat["/api/v1/public"], 99) <= 0.05
    print(f"status/public p99 <= 50 ms: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
