"""Reports over a time range: performance, usage and health, as JSON and
as one self-contained HTML file with inline SVG charts.

The telemetry comes from OTLP-JSON lines (what the ``file`` exporter
writes; source.py reads them into numpy columns), and, with ``--api``,
from a running sidecar's HTTP API (drops, exporter failures, alerts,
findings)."""
