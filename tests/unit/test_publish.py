"""send_keyed against a stand-in producer: the partitions the default partitioner picks, the
order per partition, a full batch continued in the next, an oversized message sent alone."""

from __future__ import annotations

import asyncio

from streams.publish import send_keyed
from streams.topics import key_partition


class _Batch:
    def __init__(self, room: int) -> None:
        self.room = room
        self.items: list[tuple[bytes, bytes, list]] = []

    def append(self, *, key, value, timestamp, headers):
        if len(value) > self.room:
            return None
        self.room -= len(value)
        self.items.append((key, value, list(headers)))
        return object()


class _Producer:
    def __init__(self, partitions: int, batch_bytes: int) -> None:
        self.partitions = partitions
        self.batch_bytes = batch_bytes
        self.sent: list[tuple[str, int, list]] = []

    async def partitions_for(self, topic):
        return set(range(self.partitions))

    def create_batch(self):
        return _Batch(self.batch_bytes)

    async def send_batch(self, batch, topic, *, partition):
        self.sent.append((topic, partition, batch.items))
        return _done()

    async def send(self, topic, value, *, key, partition, headers):
        self.sent.append((topic, partition, [(key, value, headers)]))
        return _done()


def _done():
    future = asyncio.get_event_loop().create_future()
    future.set_result(None)
    return future


def test_messages_go_to_their_keys_partition_in_order_batch_after_batch():
    producer = _Producer(partitions=4, batch_bytes=10)
    messages = [(f"acme/q{i % 7}".encode(), b"x" * (3 + i % 4), []) for i in range(40)]
    messages.append((b"acme/big", b"y" * 25, [("h", b"1")]))

    async def run():
        futures = await send_keyed(producer, "t", messages)
        await asyncio.gather(*futures)
        return futures

    futures = asyncio.run(run())
    assert len(futures) == len(producer.sent)
    got: dict[int, list] = {}
    for topic, partition, items in producer.sent:
        assert topic == "t"
        assert sum(len(v) for _, v, _ in items) <= 10 or len(items) == 1
        got.setdefault(partition, []).extend(items)
    expected: dict[int, list] = {}
    for key, value, headers in messages:
        expected.setdefault(key_partition(key, 4), []).append((key, value, headers))
    assert got == expected


def test_a_fixed_partition_overrides_the_key():
    producer = _Producer(partitions=4, batch_bytes=100)
    asyncio.run(send_keyed(producer, "t", [(b"a", b"1", []), (b"b", b"2", [])], partition=3))
    assert [(p, [v for _, v, _ in items]) for _, p, items in producer.sent] == [(3, [b"1", b"2"])]


def test_nothing_to_send_sends_nothing():
    producer = _Producer(partitions=4, batch_bytes=100)
    assert asyncio.run(send_keyed(producer, "t", [])) == []
    assert producer.sent == []
