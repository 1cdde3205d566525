"""Real peers for interop tests and benchmarks: the OpenTelemetry Collector
and Jaeger v2 built from the Go module proxy (build.py), and helpers that
run them on 127.0.0.1 (run.py)."""
