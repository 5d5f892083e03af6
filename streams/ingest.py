"""Stage 1: read raw events in batches, validate them, dead-letter the bad ones, condense the rest.

:class:`Condenser` is the pure part (bytes in, one column batch and dead letters out) and is
shared by the worker and by offline replay. :class:`IngestStage` is the Kafka loop around it:

1. ``getmany`` on ``callcenter.events.v1`` until ``ingest.batch_max_events`` or
   ``ingest.batch_max_ms`` after the first record, then the poll's messages scanned and
   checked at once (:mod:`streams.fastdecode`), the unusual ones decoded one by one;
2. rejected messages to ``callcenter.events.dlq.v1``: the original key and bytes as they came,
   the reason and source position in headers;
3. the valid events of each source partition as one column batch to the same partition number
   of the internal batch topic, carrying the source offsets (a poll larger than
   ``BATCH_MAX_INPUT_BYTES`` becomes several batches over consecutive offset ranges);
4. the source offsets are committed only after every produce of steps 2-3 is acknowledged;
5. for each assigned partition that is caught up and had nothing new, at most every
   ``ingest.heartbeat_ms`` an empty batch (a heartbeat, see :mod:`streams.columns`) with the
   wall clock and the time since which the partition has been quiet. A stalled stage 1 sends
   none, so stage 2 never mistakes a stall for an idle queue.

A crash between 3 and 4 redelivers the poll; the batch carries its offsets so stage 2 can
recognise it. Nothing is lost; duplicates are stage 2's to drop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from streams import clients
from streams.columns import ColumnBatch, build_batch, merge_batches
from streams.contract import Decoder, Rejection
from streams.fastdecode import FastCondenser
from streams.settings import Settings

__all__ = ["DeadLetter", "Condenser", "IngestStage", "dead_letter_headers", "dlq_headers",
           "size_bounded_chunks", "BATCH_MAX_INPUT_BYTES"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message and why; ``value`` is the original bytes, untouched."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    rejection: Rejection


def dlq_headers(*, reason: str, detail: str, source_topic: str, source_partition: int,
                source_offset: int, rejected_at_ms: int, field: str | None = None,
                reconstructed: bool = False) -> list[tuple[str, bytes]]:
    """Kafka headers of every DLQ record: machine-readable reason and where the message came
    from. ``reconstructed`` marks a value rebuilt from a column batch (stage 2's late events)
    rather than the original bytes."""
    headers = [
        ("callslo.dlq.v", b"1"),
        ("callslo.reason", reason.encode()),
        ("callslo.detail", detail.encode()),
        ("callslo.source.topic", source_topic.encode()),
        ("callslo.source.partition", str(source_partition).encode()),
        ("callslo.source.offset", str(source_offset).encode()),
        ("callslo.rejected_at_ms", str(rejected_at_ms).encode()),
    ]
    if field is not None:
        headers.append(("callslo.field", field.encode()))
    if reconstructed:
        headers.append(("callslo.value", b"reconstructed"))
    return headers


def dead_letter_headers(letter: DeadLetter, rejected_at_ms: int) -> list[tuple[str, bytes]]:
    """DLQ headers of a message stage 1 refused."""
    r = letter.rejection
    return dlq_headers(reason=r.reason, detail=r.detail, source_topic=letter.topic,
                       source_partition=letter.partition, source_offset=letter.offset,
                       rejected_at_ms=rejected_at_ms, field=r.field)


#: Raw source bytes condensed into one column batch at most (a row's fixed columns counted as
#: ``_ROW_OVERHEAD_BYTES``). One poll may bring up to ``clients.MAX_REQUEST_BYTES`` per
#: partition; as one batch, a poll of large valid events would exceed the batch topic's
#: 16 MiB ``max.message.bytes``, the produce would fail on every redelivery and the partition
#: would stall. A batch is never much larger than the messages it condenses, so 8 MiB leaves
#: a wide margin.
BATCH_MAX_INPUT_BYTES = 8 * 1024 * 1024
_ROW_OVERHEAD_BYTES = 64

#: A source message as stage 1 sees it: ``(offset, key, value)``.
Message = tuple[int, bytes | None, bytes | None]


def size_bounded_chunks(messages: Sequence[Message], max_input_bytes: int = BATCH_MAX_INPUT_BYTES
                        ) -> list[Sequence[Message]]:
    """Split one partition's poll, in offset order, into runs of at most ``max_input_bytes``
    (a single larger message is a run of its own). Each run becomes one batch; consecutive
    runs cover consecutive offsets, as consecutive polls would."""
    chunks: list[Sequence[Message]] = []
    start = 0
    used = 0
    for i, (_, _, value) in enumerate(messages):
        size = _ROW_OVERHEAD_BYTES + (len(value) if value is not None else 0)
        if used and used + size > max_input_bytes:
            chunks.append(messages[start:i])
            start, used = i, 0
        used += size
    if start < len(messages):
        chunks.append(messages[start:])
    return chunks


class Condenser:
    """Decodes the raw messages of one source partition into a column batch plus dead letters.

    Most messages take the fast path (:class:`streams.fastdecode.FastCondenser`: the whole
    poll scanned and checked at once); the ones it is not sure of are decoded one by one by
    the exact :class:`~streams.contract.Decoder`, which accepts them or says why not.
    """

    def __init__(self, decoder: Decoder, source_topic: str) -> None:
        self.decoder = decoder
        self.source_topic = source_topic
        self.fast = FastCondenser(decoder)
        self.counts: Counter[str] = Counter()

    def condense(self, partition: int, messages: Sequence[Message],
                 now_ms: int) -> tuple[ColumnBatch | None, list[DeadLetter]]:
        """``messages`` are ``(offset, key, value)`` in offset order. Returns the batch of valid
        events (``None`` when there is none) and the dead letters, in offset order."""
        if not messages:
            return None, []
        offsets, keys, values = (list(column) for column in zip(*messages))
        return self.condense_columns(partition, offsets, keys, values, now_ms)

    def condense_columns(self, partition: int, offsets: list[int], keys: list[bytes | None],
                         values: list[bytes | None], now_ms: int
                         ) -> tuple[ColumnBatch | None, list[DeadLetter]]:
        """:meth:`condense` of messages given as three lists (stage 1's hot path)."""
        if not offsets:
            return None, []
        batch, unsure = self.fast.condense(self.source_topic, partition, offsets, keys, values,
                                           now_ms)
        if not unsure.size:
            return batch, []
        valid: list[tuple[int, dict[str, Any]]] = []
        dead: list[DeadLetter] = []
        decode = self.decoder.decode
        for i in unsure.tolist():
            offset, key, value = offsets[i], keys[i], values[i]
            outcome = decode(value, key, now_ms)
            if type(outcome) is dict:
                valid.append((offset, outcome))
            else:
                dead.append(DeadLetter(self.source_topic, partition, offset, key,
                                       value or b"", outcome))  # type: ignore[arg-type]
        self.counts["exact_decoded"] += len(unsure)
        if valid:
            exact = build_batch(self.source_topic, partition, valid, offsets[0], offsets[-1])
            batch = exact if batch is None else merge_batches(batch, exact)
        return batch, dead


#: Polls produced but not yet acknowledged while stage 1 fetches the next: their broker
#: round trips overlap the next poll's decoding instead of idling the shared event loop.
_POLLS_IN_FLIGHT = 2


@dataclass
class _Produced:
    """One poll's pending produces and the offsets to commit once they are acknowledged."""

    pending: list[asyncio.Future[Any]]
    offsets: dict[TopicPartition, int]

    def acknowledged(self) -> bool:
        return all(future.done() for future in self.pending)


class IngestStage:
    """The stage-1 loop on Kafka. ``await run()`` until ``stop()``; counters in :attr:`counts`."""

    def __init__(self, settings: Settings, *, decoder: Decoder | None = None) -> None:
        self.settings = settings
        self.condenser = Condenser(decoder or Decoder.from_settings(settings.ingest),
                                   settings.topics.events)
        self.counts: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self._stopping = asyncio.Event()
        self._last_data_ms: dict[TopicPartition, int] = {}
        self._last_heartbeat_ms: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        s = self.settings
        self._producer = clients.producer(s.kafka, "ingest")
        self._consumer = clients.group_consumer(
            s.kafka, s.worker, "ingest", s.ingest.group_id, s.topics.events,
            max_poll_records=s.ingest.batch_max_events, fetch_max_wait_ms=s.ingest.batch_max_ms,
            fetch_max_bytes=4 * clients.MAX_REQUEST_BYTES)
        await clients.start_stage_clients(self._producer, self._consumer)

    async def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await clients.stop_stage_clients(self._producer, self._consumer)

    async def run(self) -> None:
        """Poll, condense, produce, commit; until :meth:`stop`. Kafka errors propagate (the
        caller's supervisor restarts us; uncommitted polls are redelivered).

        Up to ``_POLLS_IN_FLIGHT`` polls are produced and not yet acknowledged while the next
        one is fetched and condensed; they are committed in poll order, each once all of its
        produces are acknowledged, so no offset is committed past an unacknowledged poll.
        Heartbeats go out only when no poll is in flight (step 5 follows step 4)."""
        assert self._consumer is not None, "call start() first"
        last_report = time.monotonic()
        in_flight: deque[_Produced] = deque()
        active: set[TopicPartition] = set()
        while not self._stopping.is_set():
            polled = await self.poll()
            if polled:
                in_flight.append(await self.produce(polled.items()))
                active.update(tp for tp, records in polled.items() if records)
            while in_flight and (len(in_flight) > _POLLS_IN_FLIGHT
                                 or in_flight[0].acknowledged()):
                await self.commit(in_flight.popleft())
            if not in_flight:
                await self.send_heartbeats(active)
                active = set()
            if time.monotonic() - last_report >= 60 and self.rejections:
                log.warning("ingest: %d events dead-lettered so far %s",
                            sum(self.rejections.values()), dict(self.rejections))
                last_report = time.monotonic()
        # Stopping: finish what was sent (an error above skips this: nothing past it commits).
        while in_flight:
            await self.commit(in_flight.popleft())

    async def poll(self) -> dict[TopicPartition, list[Any]]:
        """The next poll: what arrives within ``ingest.batch_max_ms`` of its first record, at
        most ``ingest.batch_max_events``. ``getmany`` alone returns as soon as anything is
        there; at a live rate that made batches of a few dozen events, and per-batch costs
        (a column batch, a stage-2 step, a publish) then outweighed the events."""
        assert self._consumer is not None
        s = self.settings.ingest
        polled = await self._consumer.getmany(timeout_ms=s.batch_max_ms,
                                              max_records=s.batch_max_events)
        count = sum(map(len, polled.values()))
        deadline = time.monotonic() + s.batch_max_ms / 1000
        while 0 < count < s.batch_max_events and not self._stopping.is_set():
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            more = await self._consumer.getmany(timeout_ms=left_ms,
                                                max_records=s.batch_max_events - count)
            for tp, records in more.items():
                polled.setdefault(tp, []).extend(records)
                count += len(records)
        return polled

    async def process(self, polled: Iterable[tuple[TopicPartition, list[Any]]]) -> None:
        """Handle one poll completely: its batches and dead letters, then its commit."""
        await self.commit(await self.produce(polled))

    async def produce(self, polled: Iterable[tuple[TopicPartition, list[Any]]]) -> _Produced:
        """Steps 1-3 of the module docstring for one poll; returns its pending produces and
        the offsets to commit once they are acknowledged."""
        assert self._producer is not None
        now_ms = int(time.time() * 1000)
        pending: list[asyncio.Future[Any]] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, records in polled:
            if not records:
                continue
            positions = [r.offset for r in records]
            keys = [r.key for r in records]
            values = [r.value for r in records]
            if sum(map(len, filter(None, values))) + _ROW_OVERHEAD_BYTES * len(values) \
                    <= BATCH_MAX_INPUT_BYTES:
                chunks = [(positions, keys, values)]
            else:
                chunks = [tuple(list(column) for column in zip(*chunk))
                          for chunk in size_bounded_chunks(list(zip(positions, keys, values)))]
            for chunk_offsets, chunk_keys, chunk_values in chunks:
                batch, dead = self.condenser.condense_columns(
                    tp.partition, chunk_offsets, chunk_keys, chunk_values, now_ms)
                for letter in dead:
                    self.rejections[letter.rejection.reason] += 1
                    pending.append(await self._producer.send(
                        self.settings.topics.dlq, letter.value, key=letter.key,
                        partition=tp.partition, headers=dead_letter_headers(letter, now_ms)))
                if batch is not None:
                    pending.append(await self._producer.send(
                        self.settings.topics.batches, batch.to_bytes(),
                        key=str(tp.partition).encode(), partition=tp.partition))
                    self.counts["valid"] += batch.rows
                    self.counts["batches"] += 1
                self.counts["dead_lettered"] += len(dead)
            self.counts["consumed"] += len(records)
            offsets[tp] = records[-1].offset + 1
        return _Produced(pending, offsets)

    async def commit(self, produced: _Produced) -> None:
        """Step 4 for one poll: wait for its produces, then commit its offsets."""
        assert self._consumer is not None
        try:
            await asyncio.gather(*produced.pending)
        except KafkaError:
            log.error("ingest: a produce failed; the poll is not committed and will be redelivered")
            raise
        if produced.offsets:
            try:
                await self._consumer.commit(produced.offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                # The group rebalanced during this poll: its partitions may belong to another
                # member now, which reads them again from the last commit. Its batches repeat
                # ours and stage 2 skips the rows it applied: a crash between steps 3 and 4
                # without the crash (stopping here would only rebalance the group again).
                log.warning("ingest: the poll's offsets were not committed (%s); the new "
                            "owner of its partitions reads it again", exc)
                self.counts["commits_lost_to_rebalance"] += 1

    async def send_heartbeats(self, active: set[TopicPartition]) -> None:
        """Step 5 of the module docstring, after the poll's batches were acknowledged."""
        assert self._producer is not None and self._consumer is not None
        now_ms = int(time.time() * 1000)
        assigned = self._consumer.assignment()
        for tp in list(self._last_data_ms):
            if tp not in assigned:  # revoked: quiet time restarts if it comes back
                del self._last_data_ms[tp]
        for tp in assigned:
            if tp in active or tp not in self._last_data_ms:
                self._last_data_ms[tp] = now_ms
                continue
            if now_ms - self._last_heartbeat_ms.get(tp, 0) < self.settings.ingest.heartbeat_ms:
                continue
            highwater = self._consumer.highwater(tp)
            if highwater is None or await self._consumer.position(tp) < highwater:
                continue
            beat = ColumnBatch.heartbeat(self.settings.topics.events, tp.partition, now_ms,
                                         self._last_data_ms[tp])
            await (await self._producer.send(self.settings.topics.batches, beat.to_bytes(),
                                             key=str(tp.partition).encode(),
                                             partition=tp.partition))
            self._last_heartbeat_ms[tp] = now_ms
            self.counts["heartbeats"] += 1
