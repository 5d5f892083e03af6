"""Stage 2 in the worker: the agent that applies column batches (heartbeats included).

One :class:`~streams.engine.PartitionEngine` per assigned partition of the internal batch
topic, its state kept in the ``queue-state`` table (raw bytes: one value per shard of queues,
see :meth:`PartitionEngine.shard_value`). Every step follows the same order, so that a crash
at any point neither loses nor doubles a count:

1. apply the batch (or close idle intervals) in memory;
2. publish the final interval records, the late dead letters (their original bytes, read
   back from the events topic), the agent updates for
   queues (fanned out to their partitions of the batch topic, see :mod:`streams.agentstate`)
   and the contacts for first-contact resolution (with the partition's mark, see
   :mod:`streams.contacts`), and wait for the broker's acknowledgement;
3. at most every ``engine.state_flush_ms`` per partition: write the shards changed since the
   last write to the table's changelog (same partition as the batch), wait for their
   acknowledgement, then write the partition's marker (last applied batch offset and
   clocks) and wait for it;
4. return, letting Faust acknowledge (and later commit) the batch's offset.

Changelog writes are the scarce resource (one message per shard, whatever the batch rate),
hence step 3's pace. Faust's committed offset may therefore run ahead of the state in the
changelog. That is safe because the state, not Faust, says where to resume: the marker holds
the offset of the last batch applied, and when a batch arrives beyond the next one the state
expects, the missing batches are read with a consumer of our own and applied first (the same
repair covers Faust skipping and acknowledging messages fetched in an older generation around
rebalances). Re-applying is always safe: the records come out identical (consumers keep one
per tenant, queue and interval start), rows at or below a queue's applied offset are skipped
(a shard written by a flush whose marker never followed is simply ahead), a heartbeat already
seen changes nothing, and the FCR stage recognises contacts sent again (by their call id, or
their time before its watermark). An unexpected error stops the process (fail-stop); skipping
a batch would lose calls. Pending state is written when partitions are revoked and at
shutdown.

Realtime records (``slo.queue-realtime.v1``) are snapshots, not part of the exactly-once
result: after a step, a partition whose last snapshot is ``realtime_interval_s`` old publishes
the queues that changed, have calls waiting, or are due for a refresh.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from typing import Any, AsyncIterator

import faust
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams import clients
from streams.agentstate import UPDATE_MAGIC, decode_updates, encode_updates, updates_by_partition
from streams.columns import MAGIC, ColumnBatch
from streams.contacts import contact_messages
from streams.contract import event_key
from streams.engine import PartitionEngine, StepResult
from streams.errors import BatchFormatError
from streams.fetch import bare_records, messages_at, read_span
from streams.ingest import dlq_headers
from streams.publish import send_keyed
from streams.settings import Settings

__all__ = ["register_engine"]

log = logging.getLogger(__name__)

_FAIL_STOP_EXIT = 70
#: Record batches of the engine's outputs: below the broker's default message.max.bytes (1 MB).
_OUTPUT_BATCH_BYTES = 512 * 1024


def register_engine(app: faust.App, settings: Settings) -> dict[str, Any]:
    """Declare stage 2's topics, table and agent on ``app``; returns them by name."""
    topics = settings.topics
    batches = app.topic(topics.batches, key_type=bytes, value_type=bytes,
                        key_serializer="raw", value_serializer="raw",
                        partitions=topics.partitions)
    intervals = app.topic(topics.intervals, key_type=bytes, value_type=bytes,
                          key_serializer="raw", value_serializer="raw")
    realtime = app.topic(topics.realtime, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")
    dlq = app.topic(topics.dlq, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw")
    # bytes key and value types make Faust use its raw codec: our own compact encoding.
    # A shard of many busy queues can pass the broker's default 1 MB message limit.
    state = app.Table("queue-state", key_type=bytes, value_type=bytes,
                      partitions=topics.partitions,
                      extra_topic_configs={"max.message.bytes": str(16 * 1024 * 1024)})
    engines: dict[int, PartitionEngine] = {}
    counts: Counter[str] = Counter()
    step_lock = asyncio.Lock()
    # Shards changed since the partition's last changelog write, and when that was.
    dirty: dict[int, set[int]] = {}
    flushed_at: dict[int, float] = {}
    flushed_offset: dict[int, int] = {}
    # Records, dead letters, agent updates and realtime snapshots go out through a plain
    # aiokafka producer of our own: a Faust topic send costs ~100 us in Faust's machinery,
    # and a step may publish thousands of records. The changelog stays Faust's.
    outputs: list[AIOKafkaProducer] = []
    # A consumer of the events topic of our own, for the original bytes of late events.
    sources: list[AIOKafkaConsumer] = []
    realtime_due: dict[int, float] = {}

    async def engine_for(partition: int) -> PartitionEngine:
        engine = engines.get(partition)
        if engine is None:
            engine = PartitionEngine(partition, settings.engine, settings.queues)
            prefix = f"{partition}/".encode()
            meta_key = engine.meta_key()
            loaded = 0
            for key, value in list(state.data.items()):
                if key.startswith(prefix) and value and key != meta_key:
                    engine.load_shard(value)
                    loaded += 1
            meta = state.data.get(meta_key)
            if meta:
                engine.load_meta(meta)
            ids = 0
            async for offset, _, value in read_batches(partition, engine.restore_ids_from,
                                                       engine.batch_offset + 1):
                if value[:4] != MAGIC:
                    continue  # agent updates carry no event ids
                try:
                    batch = ColumnBatch.from_bytes(value)
                except BatchFormatError:
                    continue  # dead-lettered when it first came; it applied nothing
                engine.remember_ids(offset, batch)
                ids += 1
            engines[partition] = engine
            log.info("engine: partition %d ready, %d queues from %d shards, event ids from "
                     "%d batches", partition, len(engine.queues), loaded, ids)
        return engine

    async def read_batches(partition: int, start: int, upto: int
                           ) -> AsyncIterator[tuple[int, bytes | None, bytes]]:
        """The internal topic's messages of ``partition`` from ``start`` to ``upto``
        (exclusive), with a consumer of our own (Faust's delivers only what comes next)."""
        if start < 0 or start >= upto:
            return
        consumer = clients.consumer(settings.kafka, "engine-reread")
        await consumer.start()
        try:
            async for record in read_span(consumer, TopicPartition(topics.batches, partition),
                                          start, upto):
                yield record.offset, record.key, record.value
        finally:
            await consumer.stop()

    async def fill_gap(engine: PartitionEngine, upto: int) -> None:
        """Apply the batches between the state's last one and offset ``upto`` (exclusive)."""
        start = engine.batch_offset + 1
        if start >= upto:
            return
        log.warning("engine: partition %d resumes at batch %d but its state ends at %d; "
                    "reading the batches in between", engine.partition, upto, start - 1)
        async for offset, key, value in read_batches(engine.partition, start, upto):
            await apply_one(engine, offset, key, value)
            counts["gap_batches"] += 1

    async def apply_one(engine: PartitionEngine, offset: int, key: bytes | None,
                        value: bytes) -> None:
        try:
            if value[:4] == UPDATE_MAGIC:
                step = engine.apply_agent_updates(decode_updates(value))
                engine.mark_batch(offset, None)
                await publish(engine, step)
                counts.update(step.counts)
                return
            batch = ColumnBatch.from_bytes(value)
        except BatchFormatError as exc:
            await _dead_letter_batch(dlq, app, topics.batches, engine.partition, offset, key,
                                     value, exc)
            engine.mark_batch(offset, None)
            return
        step = engine.apply(batch)
        engine.mark_batch(offset, batch)
        await publish(engine, step)
        counts.update(step.counts)

    async def output() -> AIOKafkaProducer:
        if not outputs:
            # Records go out as one record batch per partition and step (streams.publish).
            producer = clients.producer(settings.kafka, "engine", linger_ms=2,
                                        max_batch_size=_OUTPUT_BATCH_BYTES)
            await producer.start()
            outputs.append(producer)
        return outputs[0]

    async def publish(engine: PartitionEngine, step: StepResult) -> None:
        """Steps 2 and 3 of the module docstring. Each send's own delivery future is awaited:
        a producer-wide flush can return before a message handed over a moment earlier has
        even reached the client's queue."""
        now_ms = int(time.time() * 1000)
        producer = await output()
        send = producer.send
        delivered = await send_keyed(producer, topics.intervals, (
            (f"{record['tenant']}/{record['queue']}".encode(), orjson.dumps(record), [])
            for record in step.records))
        originals = await original_messages(engine.partition, [late.offset for late in step.late])
        for late in step.late:
            event = late.event
            original = originals.get(late.offset)
            key, value = ((event_key(event).encode(), orjson.dumps(event)) if original is None
                          else original)
            delivered.append(await send(
                topics.dlq, value, key=key, partition=late.source_partition,
                headers=dlq_headers(
                    reason="late", source_topic=topics.events,
                    detail=(f"interval starting {late.interval_start_ms} closed; every interval "
                            f"ending at or before {late.closed_before_ms} is final"),
                    source_partition=late.source_partition, source_offset=late.offset,
                    rejected_at_ms=now_ms, reconstructed=original is None)))
        for partition, updates in updates_by_partition(step.agent_updates, topics.partitions).items():
            delivered.append(await send(topics.batches, encode_updates(updates),
                                        partition=partition))
        for partition, value in contact_messages(engine.partition, step.contacts,
                                                 step.fcr_mark_ms, topics.partitions).items():
            delivered.append(await send(topics.contacts, value, partition=partition))
        await asyncio.gather(*delivered)
        dirty.setdefault(engine.partition, set()).update(step.dirty_shards)
        flush_ms = settings.engine.state_flush_ms
        if time.monotonic() - flushed_at.get(engine.partition, 0.0) >= flush_ms / 1000:
            await flush(engine)
        counts["records"] += len(step.records)
        counts["late"] += len(step.late)
        counts["agent_updates_sent"] += len(step.agent_updates)
        counts["contacts_sent"] += len(step.contacts)

    async def flush(engine: PartitionEngine) -> None:
        """Step 3: the shards changed since the last flush, then the partition's marker, each
        acknowledged before the next write."""
        flushed_at[engine.partition] = time.monotonic()
        shards = dirty.pop(engine.partition, set())
        if not shards and flushed_offset.get(engine.partition) == engine.batch_offset:
            return
        written = []
        for shard in sorted(shards):
            written.append(await write_state(engine, engine.shard_key(shard),
                                             engine.shard_value(shard)))
        await asyncio.gather(*written)
        await (await write_state(engine, engine.meta_key(), engine.meta_value()))
        flushed_offset[engine.partition] = engine.batch_offset
        counts["state_flushes"] += 1

    async def write_state(engine: PartitionEngine, key: bytes, value: bytes) -> Any:
        state.data[key] = value
        return await state.changelog_topic.send(key=key, value=value, partition=engine.partition,
                                                key_serializer="raw", value_serializer="raw")

    async def original_messages(partition: int, offsets: list[int]
                                ) -> dict[int, tuple[bytes | None, bytes]]:
        """(key, value) of the source messages at ``offsets`` of the events topic's
        ``partition``, as they came, for the late dead letters. Late events are few and
        their offsets lie within one batch, so one read of that span; a message the topic
        no longer keeps (retention) is missing, and its dead letter says it was rebuilt."""
        if not offsets:
            return {}
        if not sources:
            consumer = clients.consumer(settings.kafka, "engine-late")
            await consumer.start()
            bare_records(consumer)
            sources.append(consumer)
        found = await messages_at(sources[0], TopicPartition(topics.events, partition), offsets)
        wanted = len(set(offsets))
        if len(found) < wanted:
            log.warning("engine: %d of %d late events of partition %d are no longer on %s; "
                        "their dead letters carry the event rebuilt from the batch",
                        wanted - len(found), wanted, partition, topics.events)
        counts["late_originals"] += len(found)
        return found

    async def publish_realtime(engine: PartitionEngine) -> None:
        now = time.monotonic()
        if now < realtime_due.get(engine.partition, 0.0):
            return
        realtime_due[engine.partition] = now + settings.engine.realtime_interval_s
        records = engine.realtime(int(time.time() * 1000))
        await asyncio.gather(*await send_keyed(await output(), topics.realtime, (
            (f"{record['tenant']}/{record['queue']}".encode(), orjson.dumps(record), [])
            for record in records)))
        counts["realtime_records"] += len(records)

    @app.agent(batches, name="callslo-engine")
    async def apply_batches(stream: faust.StreamT) -> None:
        try:
            await consume(stream)
        finally:
            try:
                async with step_lock:
                    await flush_all()
            finally:
                if outputs:
                    await outputs.pop().stop()
                if sources:
                    await sources.pop().stop()

    async def flush_all() -> None:
        """Write every partition's pending state (stopping, or partitions revoked). Should this
        fail, the next owner re-applies the batches since the last marker: nothing is lost."""
        try:
            for engine in list(engines.values()):
                await flush(engine)
        except Exception:
            log.warning("engine: pending state not written; the next owner re-reads the "
                        "batches since the last write", exc_info=True)

    async def consume(stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                async with step_lock:
                    message = event.message
                    engine = await engine_for(message.partition)
                    await fill_gap(engine, message.offset)
                    await apply_one(engine, message.offset, message.key, event.value)
                    await publish_realtime(engine)
            except asyncio.CancelledError:
                raise
            except BaseException:
                log.critical("engine: failed on %s[%d]@%d; stopping without acknowledging it",
                             event.message.topic, event.message.partition, event.message.offset,
                             exc_info=True)
                logging.shutdown()
                os._exit(_FAIL_STOP_EXIT)

    @app.on_partitions_revoked.connect
    async def forget_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        # Rebuilt from the table on next use; the table holds every acknowledged step.
        async with step_lock:
            await flush_all()
            engines.clear()
            dirty.clear()

    @app.timer(interval=60.0)
    async def report() -> None:
        if counts:
            log.info("engine: %s", dict(counts))

    return {"batches": batches, "intervals": intervals, "realtime": realtime, "state": state,
            "agent": apply_batches, "engines": engines, "counts": counts}


async def _dead_letter_batch(dlq: faust.TopicT, app: faust.App, topic: str, partition: int,
                             offset: int, key: bytes | None, value: bytes,
                             exc: BatchFormatError) -> None:
    """A damaged message on the internal topic: keep its bytes on the DLQ, say why."""
    log.error("engine: %s[%d]@%d is not a column batch (%s); dead-lettered", topic, partition,
              offset, exc)
    await (await dlq.send(key=key, value=value, partition=partition,
                          headers=dlq_headers(reason="bad_batch", detail=str(exc),
                                              source_topic=topic, source_partition=partition,
                                              source_offset=offset,
                                              rejected_at_ms=int(time.time() * 1000))))

