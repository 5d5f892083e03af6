"""Bugs the bad-input campaign found in stage 1, each pinned by the smallest input that showed it."""

from __future__ import annotations

import orjson

from streams.columns import ColumnBatch, build_batch
from streams.contract import Rejection, event_key
from streams.ingest import BATCH_MAX_INPUT_BYTES, size_bounded_chunks
from tests.unit.fuzz.invariants import CONDENSER, NOW_MS, decoder, example

BATCH_TOPIC_MAX_BYTES = 16 * 1024 * 1024  # max.message.bytes of the batch topic (streams.topics)


def _decode(event_bytes: bytes, key: bytes | None = b"acme/support"):
    return decoder().decode(event_bytes, key, NOW_MS)


def test_a_type_or_version_nested_a_thousand_deep_is_refused_not_raised():
    # The detail used repr() of the value: RecursionError, and stage 1 stopped on the message
    # at every redelivery.
    body = orjson.dumps(example("call.queued"))[:-1]
    for name, reason in (("type", "unknown_type"), ("v", "unsupported_version")):
        raw = body + b',"' + name.encode() + b'":' + b"[" * 1000 + b"]" * 1000 + b"}"
        outcome = _decode(raw)
        assert isinstance(outcome, Rejection) and outcome.reason == reason
        assert "array" in outcome.detail


def test_the_detail_header_shows_a_short_prefix_of_a_huge_value():
    # It used to carry the whole repr: a 900 kB header on top of a 900 kB value.
    outcome = _decode(orjson.dumps({**example("call.queued"), "v": "x" * 900_000}))
    assert outcome.reason == "unsupported_version"
    assert len(outcome.detail) < 200 and outcome.detail.startswith("v='xxx")


def test_fields_of_another_type_are_neither_read_nor_condensed():
    # wait_ms on call.ended is an unchecked extra; build_batch read it anyway and raised
    # (ValueError, OverflowError), or put a JSON object into the agent_id column.
    ended = {**example("call.ended"), "wait_ms": "x", "acw_ms": 1e300, "caller": [1]}
    queued = {**example("call.queued"), "agent_id": {"a": 1}, "hold_ms": -5}
    messages = [(i, event_key({**e, "tenant": e["tenant"]}).encode(), orjson.dumps(e))
                for i, e in enumerate([ended, queued])]
    batch, dead = CONDENSER.condense(0, messages, NOW_MS)
    assert not dead and batch is not None
    rows = list(ColumnBatch.from_bytes(batch.to_bytes()).events())
    assert "wait_ms" not in rows[0] and "acw_ms" not in rows[0] and "caller" not in rows[0]
    assert "agent_id" not in rows[1] and "hold_ms" not in rows[1]
    assert batch.arrays["hold_ms"].tolist()[1] == -1


def test_a_transfer_without_kind_comes_back_without_kind():
    # code -1 ("absent") indexed the kind table from its end and gave kind "queue".
    event = {**example("call.transferred"), "v": 1}
    del event["kind"]
    batch = build_batch("events", 0, [(5, event)], 5, 5)
    (again,) = ColumnBatch.from_bytes(batch.to_bytes()).events()
    assert "kind" not in again


def test_a_tombstone_is_refused_by_the_decoder_itself():
    outcome = decoder().decode(None, b"acme/support", NOW_MS)
    assert isinstance(outcome, Rejection) and outcome.reason == "not_json"


def _large_agent_event(i: int) -> dict:
    # 1000 queues of 256 three-byte characters: about 770 kB, under the 1 MiB message limit.
    queues = [f"{i:03d}{n:03d}" + "€" * 250 for n in range(1000)]
    return {**example("agent.state"), "event_id": f"big-{i}", "queues": queues}


def test_a_poll_of_large_valid_events_is_condensed_into_batches_the_topic_accepts():
    # One poll may bring up to 20 MiB per partition; as one batch it exceeded the batch
    # topic's 16 MiB limit, and the produce failed on every redelivery.
    events = [_large_agent_event(i) for i in range(25)]
    messages = [(100 + i, event_key(e).encode(), orjson.dumps(e)) for i, e in enumerate(events)]
    whole, _ = CONDENSER.condense(0, messages, NOW_MS)
    assert len(whole.to_bytes()) > BATCH_TOPIC_MAX_BYTES  # the test would fail without chunks
    chunks = size_bounded_chunks(messages)
    assert len(chunks) > 2
    ids, offsets = [], []
    for chunk in chunks:
        batch, dead = CONDENSER.condense(0, chunk, NOW_MS)
        assert not dead
        data = batch.to_bytes()
        assert len(data) < BATCH_TOPIC_MAX_BYTES
        again = ColumnBatch.from_bytes(data)
        ids += [e["event_id"] for e in again.events()]
        offsets.append((again.first_offset, again.last_offset))
    assert ids == [e["event_id"] for e in events]
    # consecutive batches cover consecutive offsets, as consecutive polls would
    assert offsets[0][0] == 100 and offsets[-1][1] == 124
    assert all(b[0] == a[1] + 1 for a, b in zip(offsets, offsets[1:]))


def test_size_bounded_chunks_edges():
    assert size_bounded_chunks([]) == []
    big = (1, None, b"x" * (BATCH_MAX_INPUT_BYTES + 1))
    small = (2, None, b"{}")
    assert size_bounded_chunks([big, small]) == [[big], [small]]
    assert size_bounded_chunks([small, (3, None, None)]) == [[small, (3, None, None)]]
