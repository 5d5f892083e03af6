"""The worker's hot consumers get aiokafka's record objects, without a ConsumerRecord each.

aiokafka decodes a fetched record batch into its own record objects (``offset``, ``key``,
``value``, ``timestamp``, ``headers``; compiled code) and then builds a ``ConsumerRecord``
per message in Python, with deserializers, sizes and a headers tuple. Stage 1 reads only
``offset``, ``key`` and ``value`` (the SLO and FCR stages and the wallboard reader even
less), so the second object was pure cost: about 11 % of the worker's profile at 1,000
queues. :func:`bare_records` makes one consumer's fetcher yield the first object as is.
Everything else stays aiokafka's: CRC checks, compressed batches, control batches, aborted
transactions and the consumer's position.

This reaches into private aiokafka attributes (the fetcher's ``_records`` table, a fetch
result's ``_partition_records`` and its ``_consumer_record`` hook); ``constraints.txt`` pins
aiokafka, and ``tests/unit/test_fetch.py`` fails when an upgrade moves them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import FetchResult

__all__ = ["bare_records"]


def _bare(tp: Any, record: Any) -> Any:
    return record


class _BareResults(OrderedDict):
    """The fetcher's table of fetched partitions: each new fetch result yields its records
    bare."""

    def __setitem__(self, tp: Any, result: Any) -> None:
        if isinstance(result, FetchResult):
            records = result._partition_records
            if records is not None:
                records._consumer_record = _bare
        super().__setitem__(tp, result)


def bare_records(consumer: AIOKafkaConsumer) -> None:
    """From now on, ``consumer.getmany`` returns aiokafka's record objects (with ``offset``,
    ``key``, ``value``) instead of ``ConsumerRecord``; call after ``start()``."""
    fetcher = consumer._fetcher
    if fetcher is None:
        raise RuntimeError("bare_records: start the consumer first")
    if not isinstance(fetcher._records, _BareResults):
        fetcher._records = _BareResults(fetcher._records)
