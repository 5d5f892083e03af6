"""Reading a topic from the beginning: the one whole-topic reader that ``callslo records``,
``callslo report``, the benchmarks and the integration tests share, and the one-partition
reader the SLO and FCR stages rebuild their state with."""

from __future__ import annotations

from typing import Any, AsyncIterator, Sequence

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streams import clients
from streams.settings import KafkaSettings

__all__ = ["read_topic", "read_partition"]


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


async def read_partition(kafka: KafkaSettings, topic: str, partition: int, role: str,
                         upto: int | None = None) -> AsyncIterator[ConsumerRecord]:
    """The messages of one partition from its beginning up to offset ``upto`` (exclusive;
    ``None``: its end when the read starts), in offset order: how a stage that keeps no
    state of its own rebuilds it at start."""
    consumer = clients.consumer(kafka, role)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        stop = (await consumer.end_offsets([tp]))[tp]
        if upto is not None:
            stop = min(stop, upto)
        while await consumer.position(tp) < stop:
            for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                if record.offset >= stop:
                    return
                yield record
    finally:
        await consumer.stop()
