"""Span reads on the real broker (``streams.fetch``): the batches a resuming engine re-applies
and the original bytes of late events, including offsets the partition no longer keeps
because records were deleted from its start, as retention does."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic, RecordsToDelete

from streams import clients
from streams.fetch import bare_records, messages_at, read_span
from streams.settings import KafkaSettings
from tests.integration.kafka_helpers import produce

pytestmark = pytest.mark.timeout(120)


async def _scenario(bootstrap: str) -> None:
    kafka = KafkaSettings(bootstrap=bootstrap)
    topic = f"fetch-span-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)
    admin = clients.admin(kafka)
    await admin.start()
    consumer = clients.consumer(kafka, "test")
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        sent = await produce(bootstrap, topic, [(f"k{i}".encode(), f"v{i}".encode())
                                                for i in range(20)])
        assert [offset for _, offset in sent] == list(range(20))
        await consumer.start()
        bare_records(consumer)  # as the worker reads them

        assert [r.offset async for r in read_span(consumer, tp, 3, 9)] == list(range(3, 9))
        assert [r.offset async for r in read_span(consumer, tp, 5, 5)] == []
        assert await messages_at(consumer, tp, [7, 4, 7, 19]) == {
            4: (b"k4", b"v4"), 7: (b"k7", b"v7"), 19: (b"k19", b"v19")}
        assert await messages_at(consumer, tp, []) == {}

        # Retention: everything before offset 10 is gone.
        await admin.delete_records({tp: RecordsToDelete(before_offset=10)}, timeout_ms=10_000)
        assert await messages_at(consumer, tp, [6, 12, 25]) == {12: (b"k12", b"v12")}
        assert await messages_at(consumer, tp, [2, 3]) == {}
        assert [r.offset async for r in read_span(consumer, tp, 2, 15)] == list(range(10, 15))
    finally:
        await consumer.stop()
        await admin.delete_topics([topic])
        await admin.close()


def test_span_reads_skip_offsets_the_partition_no_longer_keeps(kafka_bootstrap):
    asyncio.run(_scenario(kafka_bootstrap))
