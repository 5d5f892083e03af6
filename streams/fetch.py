"""Reading records in the worker: aiokafka's record objects without a ConsumerRecord each
for the hot consumers, and the reads of a span of offsets (batches to re-apply, the original
bytes of late events).

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

import time
from collections import OrderedDict
from typing import Any, AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import FetchResult

__all__ = ["bare_records", "read_span", "messages_at"]


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


async def read_span(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, upto: int,
                    timeout_s: float | None = None) -> AsyncIterator[Any]:
    """The records of ``tp`` at offsets ``start`` to ``upto`` (exclusive), read with
    ``consumer`` (one of the caller's own: it is assigned ``tp`` alone and moved). Offsets
    the partition no longer holds are passed over; with ``timeout_s`` the read ends then,
    complete or not."""
    if start >= upto:
        return
    consumer.assign([tp])
    consumer.seek(tp, start)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while await consumer.position(tp) < upto:
        if deadline is not None and time.monotonic() >= deadline:
            return
        for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
            if record.offset >= upto:
                return
            yield record


async def messages_at(consumer: AIOKafkaConsumer, tp: TopicPartition, offsets: list[int],
                      timeout_s: float = 30.0) -> dict[int, tuple[bytes | None, bytes]]:
    """(key, value) of the messages of ``tp`` at ``offsets``, in one read from the first to
    the last. Offsets the partition no longer keeps (retention, compaction) or holds no
    value at are missing from the result; so are all not read within ``timeout_s``."""
    if not offsets:
        return {}
    kept_from = (await consumer.beginning_offsets([tp]))[tp]
    end = (await consumer.end_offsets([tp]))[tp]
    wanted = set(offsets)
    found: dict[int, tuple[bytes | None, bytes]] = {}
    async for record in read_span(consumer, tp, max(min(offsets), kept_from),
                                  min(max(offsets) + 1, end), timeout_s):
        if record.offset in wanted and record.value is not None:
            found[record.offset] = (record.key, record.value)
    return found
