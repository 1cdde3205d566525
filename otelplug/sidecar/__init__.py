"""The sidecar: Collector-style pipelines over batches drained from rings.

  config/        YAML loading, ${env:...} substitution, typed decoding with
                 ``a::b::c`` error paths, service/pipeline validation, the
                 transport types network components share (endpoint, TLS)
  component.py   component ids, kinds, factories (typed default config,
                 stability), the settings a component is created with
  factories.py   the default registry of factories: one module per type
  service.py     the running graph: builds, starts and stops the components
  consumer.py    what components hand data to: Consumer, FanOut, and the
                 PipelineRouter a connector gets
  shared.py      instances several components share, owned by the service
  ack.py         delivery acks: when a receiver may let go of its data
  signals.py     record type and item word per signal
  rewrite.py     decode, edit, re-encode records (attribute processors)
  telemetry.py   the sidecar's self-metrics and their /metrics endpoint
  reference.py   docs/components.md and docs/self-metrics.md, generated
  helpers/       the plumbing every processor and exporter gets (counts,
                 queue, retry, timeout, HTTP)
  sampling/      sampling code shared by components (OTEP 235, tracestate)
  semconvcheck/  the semantic-convention checker of semconv and semconv_router
  receivers/ processors/ exporters/ connectors/ extensions/
                 one small module (or package) per component type

The batch type, ``RecordSet``, is the codec layer's
(``otelplug.codec.recordset``).
"""
