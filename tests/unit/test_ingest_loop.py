"""Stage 1's loop with polls in flight: offsets are committed in poll order and only after
every produce of the poll is acknowledged; a failed produce commits nothing after it.

The two Kafka clients are small in-process stand-ins whose acknowledgements the test
releases by hand (the loop against the real broker is tests/integration/test_ingest_kafka.py).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from streams.ingest import IngestStage

TP = TopicPartition("events", 0)


def _record(offset: int) -> SimpleNamespace:
    value = orjson.dumps({"event_id": f"e{offset}", "type": "call.queued", "tenant": "acme",
                          "queue": "sales", "call_id": f"c{offset}",
                          "ts_ms": 1_700_000_000_000 + offset})
    return SimpleNamespace(offset=offset, key=b"acme/sales", value=value)


class Producer:
    """Every send returns a future the test resolves."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future] = []

    async def send(self, topic, value, key=None, partition=None, headers=None):
        future = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


class Consumer:
    """Hands out the given polls one by one, then empty polls; records commits."""

    def __init__(self, polls: list[list[int]]) -> None:
        self.polls = polls
        self.commits: list[int] = []

    async def getmany(self, timeout_ms, max_records):
        await asyncio.sleep(0.001)
        if self.polls:
            return {TP: [_record(o) for o in self.polls.pop(0)]}
        return {}

    async def commit(self, offsets):
        self.commits.append(offsets[TP])

    def assignment(self):
        return {TP}

    def highwater(self, tp):
        return None  # never caught up: no heartbeats in this test


def _stage(make_settings, polls, batch_max_ms=1, batch_max_events=10_000):
    # batch_max_ms=1: each stand-in poll stays a poll of its own (see test_poll_gathers_...).
    stage = IngestStage(make_settings(ingest={"batch_max_ms": batch_max_ms,
                                              "batch_max_events": batch_max_events}))
    stage._producer = Producer()
    stage._consumer = Consumer(polls)
    return stage


async def _until(predicate, timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.001)


def test_commits_follow_poll_order_and_wait_for_every_acknowledgement(make_settings):
    async def scenario():
        stage = _stage(make_settings, [[0, 1], [2, 3], [4]])
        producer, consumer = stage._producer, stage._consumer
        runner = asyncio.create_task(stage.run())
        # Two polls in flight, the third waits for the oldest to be acknowledged.
        await _until(lambda: len(producer.futures) == 3)
        assert consumer.commits == []
        producer.futures[1].set_result(None)  # the second poll first: still nothing committed
        await asyncio.sleep(0.05)
        assert consumer.commits == []
        producer.futures[0].set_result(None)
        await _until(lambda: consumer.commits == [2, 4])
        producer.futures[2].set_result(None)
        await _until(lambda: consumer.commits == [2, 4, 5])
        await stage.stop()
        await asyncio.wait_for(runner, 2)

    asyncio.run(scenario())


def test_a_failed_produce_commits_nothing_from_it_on(make_settings):
    async def scenario():
        stage = _stage(make_settings, [[0], [1], [2]])
        producer, consumer = stage._producer, stage._consumer
        runner = asyncio.create_task(stage.run())
        await _until(lambda: len(producer.futures) == 3)
        producer.futures[0].set_exception(KafkaError("broker said no"))
        producer.futures[1].set_result(None)
        producer.futures[2].set_result(None)
        with pytest.raises(KafkaError):
            await asyncio.wait_for(runner, 2)
        assert consumer.commits == []

    asyncio.run(scenario())


def test_stopping_commits_the_polls_still_in_flight(make_settings):
    async def scenario():
        stage = _stage(make_settings, [[0], [1]])
        producer, consumer = stage._producer, stage._consumer
        runner = asyncio.create_task(stage.run())
        await _until(lambda: len(producer.futures) == 2)
        await stage.stop()
        await asyncio.sleep(0.05)
        assert consumer.commits == []  # stopping does not skip the acknowledgements
        for future in producer.futures:
            future.set_result(None)
        await asyncio.wait_for(runner, 2)
        assert consumer.commits == [1, 2]

    asyncio.run(scenario())


def test_poll_gathers_records_for_batch_max_ms_or_batch_max_events(make_settings):
    """A live rate brings a few records per fetch; a poll waits for more, up to its limits."""
    async def scenario():
        stage = _stage(make_settings, [[0], [1, 2], [3], [4, 5, 6], [7]], batch_max_ms=5_000,
                       batch_max_events=5)
        first = await stage.poll()
        assert [r.offset for r in first[TP]] == [0, 1, 2, 3, 4, 5, 6]  # stops at >= 5
        stage2 = _stage(make_settings, [[0], [1]], batch_max_ms=50)
        started = asyncio.get_running_loop().time()
        polled = await stage2.poll()
        assert [r.offset for r in polled[TP]] == [0, 1]
        assert asyncio.get_running_loop().time() - started >= 0.04  # waited out the window
        assert await _stage(make_settings, []).poll() == {}  # nothing: no waiting for more

    asyncio.run(scenario())
