"""Stage 1's bare fetch results: aiokafka's own record objects come out of a fetch result the
bare table took in, with the same offsets, keys and values and the same consumer position as
ConsumerRecords would give; compressed and plain batches alike. The test drives aiokafka's
real fetch-result classes, so an upgrade that moves the private hooks fails here."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.consumer.fetcher import FetchResult, PartitionRecords, READ_UNCOMMITTED
from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from streams.fetch import _BareResults

TP = TopicPartition("callcenter.events.v1", 2)


def batch_bytes(base_offset: int, n: int, compression: int = 0) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=compression,
                                        is_transactional=0, producer_id=-1, producer_epoch=-1,
                                        base_sequence=-1, batch_size=1 << 20)
    for i in range(n):
        builder.append(i, timestamp=1_700_000_000_000 + i, key=b"acme/q%d" % i,
                       value=b'{"n": %d}' % i, headers=[])
    data = bytearray(builder.build())
    data[0:8] = base_offset.to_bytes(8, "big")  # the broker sets the batch's base offset
    return bytes(data)


def fetch_result(data: bytes, fetch_offset: int) -> tuple[FetchResult, SubscriptionState]:
    """A fetch result as the fetcher makes it (call inside a running loop: aiokafka's
    subscription state wants one)."""
    subscriptions = SubscriptionState()
    subscriptions.assign_from_user({TP})
    assignment = subscriptions.subscription.assignment
    assignment.state_value(TP).seek(fetch_offset)
    records = PartitionRecords(TP, MemoryRecords(data), [], fetch_offset, None, None, True,
                               READ_UNCOMMITTED)
    return FetchResult(TP, assignment=assignment, partition_records=records, backoff=0), \
        subscriptions


@pytest.mark.parametrize("compression", [0, DefaultRecordBatch.CODEC_GZIP])
def test_bare_records_carry_what_stage_1_reads_and_move_the_position(compression):
    asyncio.run(_bare_records_match(compression))


async def _bare_records_match(compression: int) -> None:
    data = batch_bytes(100, 5, compression) + batch_bytes(105, 3, compression)
    plain, _ = fetch_result(data, 102)
    expected = plain.getall()
    assert all(isinstance(r, ConsumerRecord) for r in expected)

    table = _BareResults()
    table[TP], subscriptions = fetch_result(data, 102)
    bare = table[TP].getall()
    assert not any(isinstance(r, ConsumerRecord) for r in bare)
    assert [(r.offset, r.key, r.value) for r in bare] == \
        [(r.offset, r.key, r.value) for r in expected] != []
    assert [r.offset for r in bare] == [102, 103, 104, 105, 106, 107]
    assert subscriptions.subscription.assignment.state_value(TP).position == 108


def test_a_partial_take_leaves_the_position_after_the_last_record_taken():
    asyncio.run(_partial_take())


async def _partial_take() -> None:
    table = _BareResults()
    table[TP], subscriptions = fetch_result(batch_bytes(0, 10), 0)
    first = table[TP].getall(max_records=4)
    assert [r.offset for r in first] == [0, 1, 2, 3]
    assert subscriptions.subscription.assignment.state_value(TP).position == 4
    assert [r.offset for r in table[TP].getall()] == [4, 5, 6, 7, 8, 9]


def test_other_entries_pass_through_untouched():
    table = _BareResults()
    marker = object()
    table[TP] = marker
    assert table[TP] is marker
