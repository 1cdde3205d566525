"""Receivers: where data enters the pipelines (``shm``: the rings, ``otlp``)."""
