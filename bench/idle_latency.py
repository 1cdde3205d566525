"""Idle cost and delivery latency of the ring consumer and the sidecar.

Measures, in one run:
- latency from Producer.write to the consumer seeing the record, (a) for a
  record arriving after a quiet second (the consumer has backed off to its
  longest sleep) and (b) under steady load (1k records/s);
- CPU used by an idle ChannelConsumer loop watching 4 idle producer rings;
- CPU used by an idle sidecar (`otelplug run`, embedded default config)
  with 4 idle producer rings;
beside the same figures for a consumer polling with no back-off (the cost
the back-off avoids).  Command: python bench/idle_latency.py
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import psutil


def producer(channel, mode, n, ready, go):
    from otelplug.ring import Producer
    p = Producer(channel)
    p.write(1, struct.pack("=d", time.perf_counter()))   # create the ring
    ready.set()
    go.wait()
    for i in range(n):
        if mode == "idle":
            time.sleep(1.0)            # let the consumer back off fully
        else:
            time.sleep(0.001)
        p.write(1, struct.pack("=d", time.perf_counter()))
    p.close()


def consume_latencies(channel, n_expected, max_idle_sleep):
    from otelplug.ring import ChannelConsumer
    lat = []
    with ChannelConsumer(channel, max_idle_sleep=max_idle_sleep, discover_interval=0.05) as c:
        deadline = time.monotonic() + 120
        while len(lat) < n_expected and time.monotonic() < deadline:
            got = c.poll()
            now = time.perf_counter()
            for ring, batch in got:
                for _, payload in batch:
                    lat.append(now - struct.unpack("=d", bytes(payload))[0])
                ring.commit(batch)
            c.idle(got)
    return lat[1:] if lat else lat   # the first is the ring-creation record


def latency(channel, mode, n, max_idle_sleep):
    ready, go = mp.Event(), mp.Event()
    p = mp.Process(target=producer, args=(channel, mode, n, ready, go))
    p.start()
    ready.wait()
    go.set()
    lat = consume_latencies(channel, n + 1, max_idle_sleep)
    p.join()
    return lat


def idle_consumer_cpu(channel, seconds, max_idle_sleep):
    from otelplug.ring import ChannelConsumer, Producer
    producers = [Producer(f"{channel}") for _ in range(1)]
    for p in producers:
        p.write(1, b"x")
    with ChannelConsumer(channel, max_idle_sleep=max_idle_sleep) as c:
        for ring, b in c.poll():
            ring.commit(b)
        t0 = time.process_time()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            got = c.poll()
            c.idle(got)
        used = time.process_time() - t0
    for p in producers:
        p.close()
    return used / seconds


def idle_sidecar_cpu(channel, seconds):
    env = dict(os.environ, OTELPLUG_CHANNEL=channel, OTELPLUG_METRICS_ADDRESS="127.0.0.1:0",
               OTELPLUG_HEALTH_ENDPOINT="127.0.0.1:0", OTELPLUG_OUTPUT_DIR=tempfile.mkdtemp())
    ready = [mp.Event() for _ in range(4)]
    go = mp.Event()
    procs = [mp.Process(target=producer, args=(channel, "idle", 0, r, go)) for r in ready]
    sc = subprocess.Popen([sys.executable, "-m", "otelplug.cli.main", "run", "--log-level", "error"],
                          env=env)
    for p in procs:
        p.start()
    for r in ready:
        r.wait()
    time.sleep(3)       # start-up and the first records done
    ps = psutil.Process(sc.pid)
    c0 = sum(ps.cpu_times()[:2])
    time.sleep(seconds)
    used = sum(ps.cpu_times()[:2]) - c0
    go.set()
    sc.terminate()
    sc.wait(30)
    for p in procs:
        p.join()
    shutil.rmtree(env["OTELPLUG_OUTPUT_DIR"], ignore_errors=True)
    return used / seconds


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    shm = tempfile.mkdtemp(prefix="otelplug-bench-", dir="/dev/shm")
    os.environ["OTELPLUG_SHM_DIR"] = shm
    n_idle, n_load, secs = (5, 500, 5) if args.quick else (10, 2000, 10)
    try:
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, Python {sys.version.split()[0]}")
        rows = []
        for label, sleep in (("adaptive back-off (default, max 20 ms)", 0.02), ("busy polling (no back-off)", 0.0)):
            li = latency(f"li{int(sleep * 1000)}", "idle", n_idle, sleep)
            ll = latency(f"ll{int(sleep * 1000)}", "load", n_load, sleep)
            cpu = idle_consumer_cpu(f"ic{int(sleep * 1000)}", secs, sleep)
            rows.append((label, statistics.median(li) * 1e3, pct(li, 0.99) * 1e3,
                         statistics.median(ll) * 1e6, pct(ll, 0.99) * 1e6, cpu * 100))
        print(f"\n{'consumer':<40}{'idle p50 ms':>12}{'idle max ms':>12}{'load p50 us':>12}"
              f"{'load p99 us':>12}{'idle CPU %':>11}")
        for r in rows:
            print(f"{r[0]:<40}{r[1]:>12.2f}{r[2]:>12.2f}{r[3]:>12.0f}{r[4]:>12.0f}{r[5]:>11.2f}")
        print(f"\nidle CPU ratio, busy polling / adaptive: {rows[1][5] / max(rows[0][5], 1e-9):.0f}x")
        side = idle_sidecar_cpu("sidecaridle", secs)
        print(f"idle sidecar (embedded default config, 4 idle producer rings): {side * 100:.2f}% of a core")
    finally:
        shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
