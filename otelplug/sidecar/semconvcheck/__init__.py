"""Semantic-convention checking of record batches against a Weaver-style
registry: the engine shared by the ``semconv`` processor and the
``semconv_router`` connector (not a component itself).

  config.py    SemconvConfig (registry, per-level actions, cache bounds),
               the levels and actions, the registry resolved once per content
  engine.py    Engine: checks a RecordSet with a two-level shape cache and
               the native span shape hashes, counts, annotates, routes
  shapes.py    pure-Python reference of the native span shape hash
  findings.py  Verdict (what one item shape gets), finding names and labels,
               the attributes and event the findings are written as
"""
