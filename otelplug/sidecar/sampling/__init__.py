"""Sampling machinery shared by components (not a component itself), as the
Collector keeps ``pkg/sampling`` outside any one of them: the sampling
processors, and the spanmetrics connector (adjusted counts).

  otep235.py     thresholds and randomness as OTEP 235 / the Collector's
                 ``pkg/sampling`` define them (``th:`` / ``rv:`` encodings)
  tracestate.py  the W3C tracestate header and its ``ot`` member
  hashing.py     FNV-1a over trace ids, vectorised with numpy
  records.py     numpy access to span record fields the column decoder
                 does not give (tracestate position), and the tracestate
                 splice that rewrites kept spans without a full re-encode
  decisions.py   a bounded, vectorised trace-id -> decision cache
  attributes.py  attribute lookups with a cheap byte pre-filter

Everything here works on whole batches: numpy over the columns of a
RecordSet, Python only per distinct trace or per span that must change.
"""
