"""semconv: checks spans (with their events and links), log records, metrics
(with their data points) and resources against a semantic-convention
registry, with Weaver live-check's finding ids and levels (see
``otelplug.semconv.livecheck``), and acts per finding level::

    processors:
      semconv:
        registry: ../shared/semconv-upstream/main    # folder or manifest
        actions:
          violation: annotate      # pass | annotate | drop   (route: semconv_router)
          improvement: pass
          information: pass

Actions (an item gets the strongest of its findings' levels):

* ``pass``: count only.
* ``annotate``: spans and log records get ``otelplug.semconv.findings``
  (string[]: ``<finding id>:<attribute, metric or event name>``, e.g.
  ``deprecated:http.method``) and ``otelplug.semconv.level`` (the highest
  annotated level); declared in ``semconv/semconv_processor.yaml``.
  Metrics are never annotated (a point attribute would change the series).
* ``drop``: the item is removed (a numpy mask over the batch; the kept
  records keep their bytes).  For metrics the whole metric record goes.
* ``route``: only in the ``semconv_router`` connector, which sends those
  items to other pipelines (a processor's only output is the next consumer).

Resources are checked once per distinct resource; their findings are
counted but do not decide an item's action.

Self-metrics (``component`` is the processor id):

* ``otelplug_semconv_findings_total{component,id,level,signal,attribute_or_metric}``
  ``signal`` is span, log, metric or resource; ``attribute_or_metric`` is
  the attribute key, metric or event name (or span name) the finding is
  about: any registry name, plus the first ``label_limit`` other names,
  then ``other`` - bounded cardinality.
* ``otelplug_semconv_items_total{component,otel_signal,action}``
* ``otelplug_semconv_uncached_checks_total{component}``: cache bounds hit.
* gauges, refreshed at each scrape from live-check-like statistics:
  ``otelplug_semconv_registry_coverage{component,kind}`` (attributes,
  metrics, events, spans), ``otelplug_semconv_namespace_coverage{component,namespace}``,
  ``otelplug_semconv_entities{component,type}``.
  ``stats()`` returns the full report (``LiveCheckStats.to_dict()``).

Cost: checking is cached by item *shape*; for spans the shape is a native
hash of the record bytes (``cython_ext/span_shape.pyx``), so a span of a
known shape costs ~0.1 us and is never decoded unless it is annotated; see
``otelplug.sidecar.semconvcheck``.
"""
from __future__ import annotations

from ..component import Factory, Kind
from ..helpers.processor import Processor
from ..semconvcheck.config import DROP, SemconvConfig
from ..semconvcheck.engine import Engine


class SemconvProcessor(Processor):
    mutates = False   # annotating builds a new buffer; the input is never edited

    def __init__(self, settings, config: SemconvConfig, next_consumer):
        super().__init__(settings, config, next_consumer)
        self.engine = Engine(config, settings.telemetry, self.id)

    def process(self, records):
        if len(records) == 0:
            return records
        outcome = self.engine.evaluate(records)
        mask = outcome.actions != DROP
        if mask.all():
            return outcome.records
        if not mask.any():
            return None
        return outcome.select(mask)

    def stats(self) -> dict:
        """Live-check statistics of everything checked so far."""
        return self.engine.stats_dict()


factory = Factory("semconv", Kind.PROCESSOR, SemconvConfig, SemconvProcessor)
