"""The sidecar: Collector-style pipelines over batches drained from rings.

  config/      YAML loading, ${env:...} substitution, typed decoding with
               ``a::b::c`` error paths, service/pipeline validation
  component.py component ids, kinds and factories (typed default config)
  helpers/     the plumbing every processor and exporter gets (counts,
               queue, retry, timeout)
  receivers/ processors/ exporters/ connectors/ extensions/
               one small module per component type
"""
