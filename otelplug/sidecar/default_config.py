"""The embedded default config: what ``otelplug run`` does with no --config.

Every ring on the default channel, batched, written as OTLP-JSON lines to
files in the current directory (or ``$OTELPLUG_OUTPUT_DIR``) and into the
telemetry store, a DuckDB file beside them that ``otelplug query`` reads;
self-metrics on 127.0.0.1:8888 and health on 127.0.0.1:13133.
``otelplug run --print-default-config`` shows it.
"""

DEFAULT_CONFIG = """\
receivers:
  shm:
    channels: ["${env:OTELPLUG_CHANNEL:-default}"]

processors:
  batch:
    send_batch_size: 8192
    timeout: 200ms

exporters:
  file/traces:
    path: ${env:OTELPLUG_OUTPUT_DIR:-.}/otelplug-traces.jsonl
  file/metrics:
    path: ${env:OTELPLUG_OUTPUT_DIR:-.}/otelplug-metrics.jsonl
  file/logs:
    path: ${env:OTELPLUG_OUTPUT_DIR:-.}/otelplug-logs.jsonl
  store:
    url: duckdb://${env:OTELPLUG_OUTPUT_DIR:-.}/otelplug-store.duckdb

extensions:
  health_check:
    endpoint: ${env:OTELPLUG_HEALTH_ENDPOINT:-127.0.0.1:13133}

service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: ${env:OTELPLUG_METRICS_ADDRESS:-127.0.0.1:8888}
  pipelines:
    traces:
      receivers: [shm]
      processors: [batch]
      exporters: [file/traces, store]
    metrics:
      receivers: [shm]
      processors: [batch]
      exporters: [file/metrics, store]
    logs:
      receivers: [shm]
      processors: [batch]
      exporters: [file/logs, store]
"""


def default_store_url(environ=None) -> str:
    """The store URL the default config writes to (environment expanded):
    what ``otelplug query`` and ``otelplug store`` use without --store."""
    from .config.yaml_source import load_text
    loaded = load_text(DEFAULT_CONFIG, "<embedded default config>", environ)
    return loaded.data["exporters"]["store"]["url"]
