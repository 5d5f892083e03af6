"""Reading a topic from the beginning of every partition: the one whole-topic reader that
``callslo records``, ``callslo report``, the benchmarks and the integration tests share."""

from __future__ import annotations

from typing import Any, AsyncIterator, Sequence

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streams import clients
from streams.settings import KafkaSettings

__all__ = ["read_topic"]


async def read_topic(kafka: KafkaSettings, topic: str, partitions: Sequence[int], role: str, *,
                     follow: bool = False, poll_ms: int = 500,
                     **consumer_options: Any) -> AsyncIterator[ConsumerRecord]:
    """Every message of ``partitions`` of ``topic``, from the beginning of each partition.

    Without ``follow`` the read ends at the end offsets taken when it starts, so a topic that
    keeps growing still gives a finite read; with it, new messages keep coming. Messages of
    one partition come in offset order. No consumer group is joined and nothing is committed.
    ``consumer_options`` go to the consumer (fetch sizes, for example).
    """
    consumer = clients.consumer(kafka, role, **consumer_options)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while follow or [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=poll_ms)).values():
                for record in records:
                    yield record
    finally:
        await consumer.stop()
