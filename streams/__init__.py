"""callslo streams: from ACD events on Kafka to service-level records on SLO topics.

Data flows one way: adapters -> ``callcenter.events.v1`` -> stage 1 (:mod:`streams.ingest`:
decode, validate, dead-letter, condense into column batches) -> stage 2 (Faust agents and
tables, numba kernels) -> SLO topics -> consumers.
"""

__version__ = "0.1.0"
