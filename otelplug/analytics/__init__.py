"""Stream analytics beside the pipeline: the pure parts.

- ``sketch``: a mergeable DDSketch-style quantile sketch over many groups
  at once (numpy, sparse log buckets);
- ``windows``: event-time tumbling, hopping and session windows with a
  watermark and allowed lateness, aggregating batch columns per group;
- ``groups``: the group table with a cardinality limit and idle expiry;
- ``anomaly``: robust per-series baselines and scores;
- ``rules``: rule definitions and their evaluation;
- ``alerts``: the alert state machine, acknowledgements, silences and
  the persisted state;
- ``notify``: Alertmanager API v2 and webhook notifications.

Nothing here imports the sidecar: the ``analytics`` connector and the
``alerts`` extension (otelplug/sidecar/...) feed these from RecordSets.
"""
