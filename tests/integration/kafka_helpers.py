"""Small helpers for integration tests: produce events and read whole topics from the broker.

Each takes the broker as ``host:port`` (PLAINTEXT) or as :class:`KafkaSettings` (any security),
and builds its clients through :mod:`streams.clients` as callslo does."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Iterable

import orjson

from streams import clients, topics
from streams.contract import event_key
from streams.settings import KafkaSettings
from streams.topic_reader import read_topic


def now_ms() -> int:
    return int(time.time() * 1000)


Broker = str | KafkaSettings


def kafka_settings(broker: Broker) -> KafkaSettings:
    return broker if isinstance(broker, KafkaSettings) else KafkaSettings(bootstrap=broker)


async def produce(bootstrap: Broker, topic: str,
                  messages: Iterable[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    """Send ``(key, value)`` pairs in order; return ``(partition, offset)`` of each."""
    producer = clients.producer(kafka_settings(bootstrap), "test")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        return [(m.partition, m.offset) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


def event_message(event: dict[str, Any]) -> tuple[bytes, bytes]:
    return event_key({"tenant": "default", **event}).encode(), orjson.dumps(event)


async def read_all(bootstrap: Broker, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Every record currently in ``topic`` (all partitions, from the start)."""
    kafka = kafka_settings(bootstrap)
    partitions = sorted(await partition_ids(bootstrap, topic))

    async def read() -> list[Any]:
        async with contextlib.aclosing(read_topic(
                kafka, topic, partitions, "test", max_partition_fetch_bytes=32 * 1024 * 1024,
                fetch_max_bytes=64 * 1024 * 1024)) as records:
            return [record async for record in records]

    try:
        return await asyncio.wait_for(read(), timeout_s)
    except asyncio.TimeoutError:
        raise AssertionError(f"could not read {topic} to its end within {timeout_s} s") from None


async def topic_exists(bootstrap: Broker, topic: str) -> bool:
    try:
        return bool(await partition_ids(bootstrap, topic))
    except AssertionError:
        return False


async def partition_ids(bootstrap: Broker, topic: str) -> list[int]:
    kafka = kafka_settings(bootstrap)
    partitions = await topics.partition_ids(kafka, topic)
    if not partitions:
        raise AssertionError(f"topic {topic} does not exist on {kafka.bootstrap}")
    return partitions


async def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate() if asyncio.iscoroutinefunction(predicate) else predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)
