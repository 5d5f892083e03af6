"""Stage 1's pure part: a poll of one partition becomes one batch plus dead letters."""

from __future__ import annotations

import orjson

from streams.contract import Decoder, event_key
from streams.ingest import Condenser, DeadLetter, dead_letter_headers
from tests.unit.test_contract import NOW_MS, make_event


def _condenser() -> Condenser:
    return Condenser(Decoder(max_message_bytes=10_000, max_future_skew_ms=60_000,
                             max_age_ms=10**12), "callcenter.events.v1")


def _message(offset: int, event: dict) -> tuple[int, bytes, bytes]:
    return offset, event_key(event).encode(), orjson.dumps(event)


def test_valid_and_invalid_messages_are_split_in_offset_order():
    good1 = make_event("call.queued", event_id="g1")
    good2 = make_event("call.answered", event_id="g2")
    messages = [
        _message(10, good1),
        (11, b"acme/sales", b"{broken"),
        _message(12, good2),
        (13, b"acme/sales", None),
        _message(14, make_event("call.ended", talk_ms=-4)),
    ]
    batch, dead = _condenser().condense(4, messages, NOW_MS)
    assert [e["event_id"] for e in batch.events()] == ["g1", "g2"]
    assert list(batch.arrays["offset"]) == [10, 12]
    assert (batch.first_offset, batch.last_offset, batch.source_partition) == (10, 14, 4)
    assert [(d.offset, d.rejection.reason) for d in dead] == [
        (11, "not_json"), (13, "not_json"), (14, "negative_duration")]
    assert dead[0].value == b"{broken" and dead[0].key == b"acme/sales"
    assert dead[0].partition == 4 and dead[0].topic == "callcenter.events.v1"


def test_a_poll_without_valid_events_gives_no_batch_but_every_dead_letter():
    batch, dead = _condenser().condense(0, [(1, None, b"[]"), (2, None, b"1")], NOW_MS)
    assert batch is None and len(dead) == 2


def test_empty_poll():
    assert _condenser().condense(0, [], NOW_MS) == (None, [])


def test_dead_letter_headers_carry_reason_and_source():
    _, dead = _condenser().condense(3, [(77, b"k", b"nope")], NOW_MS)
    headers = dict(dead_letter_headers(dead[0], NOW_MS))
    assert headers["callslo.reason"] == b"not_json"
    assert headers["callslo.source.topic"] == b"callcenter.events.v1"
    assert headers["callslo.source.partition"] == b"3"
    assert headers["callslo.source.offset"] == b"77"
    assert headers["callslo.rejected_at_ms"] == str(NOW_MS).encode()
    assert "callslo.field" not in headers
    assert isinstance(dead[0], DeadLetter)


def test_field_header_names_the_bad_field():
    _, dead = _condenser().condense(0, [_message(1, make_event("call.ended", talk_ms="x"))], NOW_MS)
    assert dict(dead_letter_headers(dead[0], NOW_MS))["callslo.field"] == b"talk_ms"
