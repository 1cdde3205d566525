"""``otelplug demo``: adapters producing realistic telemetry through the SDK
processors, the sidecar with its embedded default config, live progress and
a summary of what was produced, accepted, exported and dropped.

  app.py        the demo orchestration (``otelplug demo``)
  adapters.py   the web, job and GPU adapter processes
  ring_demo.py  the lower-level ring demo (``otelplug demo --ring-only``):
                raw producers and one consumer, every record accounted for
"""
