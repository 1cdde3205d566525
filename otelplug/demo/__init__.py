"""``otelplug demo``: adapters producing realistic telemetry through the SDK
processors, the sidecar with its embedded default config, live progress and
a summary of what was produced, accepted, exported and dropped."""
