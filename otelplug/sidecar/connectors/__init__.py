"""Connectors: the exporter of one pipeline and the receiver of others; the
service hands each a ``PipelineRouter`` of the pipelines it feeds."""
