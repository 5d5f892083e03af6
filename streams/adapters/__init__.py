"""Adapters: programs that turn what an ACD reports into contract v1 events (docs/adapters.md).

- :mod:`streams.adapters.asterisk`: one Asterisk ``queue_log`` line -> one event, a skip, or
  a rejection (pure, no I/O);
- :mod:`streams.adapters.tail`: follows a growing log file across rotation and truncation and
  keeps its position in a state file;
- :mod:`streams.adapters.ingest_cmd`: ``callslo ingest asterisk``, which joins the two to Kafka.
"""
