"""Contract v1 decoder: every event type accepted, every rejection reason produced."""

from __future__ import annotations

import copy

import orjson
import pytest

from streams.contract import (
    EVENT_TYPES,
    MAX_DURATION_MS,
    REASONS,
    Decoder,
    Rejection,
    event_key,
)

NOW_MS = 1_790_000_000_000

VALID = {
    "call.queued": {"call_id": "c1", "queue": "sales", "caller": "h:9f2c", "priority": 2,
                    "position": 3},
    "call.answered": {"call_id": "c1", "queue": "sales", "agent_id": "a7", "wait_ms": 14_000},
    "call.abandoned": {"call_id": "c2", "queue": "sales", "wait_ms": 31_000},
    "call.dequeued": {"call_id": "c3", "queue": "sales", "reason": "timeout", "wait_ms": 120_000},
    "call.ended": {"call_id": "c1", "queue": "sales", "agent_id": "a7", "talk_ms": 180_000,
                   "hold_ms": 15_000},
    "call.wrapup_ended": {"call_id": "c1", "queue": "sales", "agent_id": "a7", "acw_ms": 30_000,
                          "disposition": "resolved"},
    "call.transferred": {"call_id": "c1", "queue": "sales", "agent_id": "a7", "target": "billing",
                         "kind": "queue"},
    "agent.state": {"agent_id": "a7", "state": "available", "reason": "login",
                    "queues": ["sales", "billing"]},
}
# Fields each type requires beyond event_id/type/ts_ms.
REQUIRED = {
    "call.queued": ["call_id", "queue"],
    "call.answered": ["call_id", "queue", "agent_id"],
    "call.abandoned": ["call_id", "queue"],
    "call.dequeued": ["call_id", "queue", "reason"],
    "call.ended": ["call_id", "queue", "agent_id", "talk_ms"],
    "call.wrapup_ended": ["call_id", "queue", "agent_id", "acw_ms"],
    "call.transferred": ["call_id", "queue"],
    "agent.state": ["agent_id", "state"],
}


def make_event(event_type: str, **changes) -> dict:
    event = {"event_id": f"e-{event_type}", "type": event_type, "ts_ms": NOW_MS - 1000,
             "tenant": "acme", **copy.deepcopy(VALID[event_type])}
    for name, value in changes.items():
        if value is _DROP:
            event.pop(name, None)
        else:
            event[name] = value
    return event


_DROP = object()


@pytest.fixture
def decoder() -> Decoder:
    return Decoder(max_message_bytes=65_536, max_future_skew_ms=300_000,
                   max_age_ms=3660 * 86_400_000)


def decode(decoder: Decoder, event: dict | bytes, key: bytes | None | str = "auto"):
    raw = event if isinstance(event, bytes) else orjson.dumps(event)
    if key == "auto":
        key = event_key({"tenant": "default", **event}).encode() if isinstance(event, dict) else None
    return decoder.decode(raw, key, NOW_MS)


def test_the_fixture_table_covers_every_event_type():
    assert set(VALID) == set(EVENT_TYPES) == set(REQUIRED)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_is_accepted_with_all_fields(decoder, event_type):
    event = make_event(event_type)
    out = decode(decoder, event)
    assert isinstance(out, dict), out
    assert out == {**event, "v": 1}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_is_accepted_with_only_required_fields(decoder, event_type):
    event = {"event_id": "e1", "type": event_type, "ts_ms": NOW_MS,
             **{name: VALID[event_type][name] for name in REQUIRED[event_type]}}
    out = decode(decoder, event)
    assert isinstance(out, dict), out
    assert out["tenant"] == "default" and out["v"] == 1


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_a_missing_required_field_is_named(decoder, event_type):
    for name in ["event_id", "ts_ms", *REQUIRED[event_type]]:
        out = decode(decoder, make_event(event_type, **{name: _DROP}), key=None if name in (
            "queue", "agent_id") else "auto")
        assert out == Rejection("missing_field", name, out.detail), (name, out)


def test_unknown_extra_fields_are_kept(decoder):
    out = decode(decoder, make_event("call.answered", x_skill="spanish", x_nested={"a": [1]}))
    assert out["x_skill"] == "spanish" and out["x_nested"] == {"a": [1]}


def test_null_optional_fields_are_accepted(decoder):
    out = decode(decoder, make_event("call.answered", wait_ms=None, source=None))
    assert isinstance(out, dict)


@pytest.mark.parametrize("raw, reason", [
    (b"not json", "not_json"),
    (b"\xff\xfe{}", "not_json"),
    (b'{"a": NaN}', "not_json"),
    (b'{"a": Infinity}', "not_json"),
    (b'{"a": 1e999}', "not_json"),
    (b"[" * 2000 + b"]" * 2000, "not_json"),
    (b"", "not_json"),
    (b"[1, 2]", "not_object"),
    (b'"call.queued"', "not_object"),
    (b"42", "not_object"),
    (b"null", "not_object"),
])
def test_undecodable_messages(decoder, raw, reason):
    out = decode(decoder, raw, key=None)
    assert isinstance(out, Rejection) and out.reason == reason


def test_too_large_is_checked_before_parsing(decoder):
    event = make_event("call.queued", padding="x" * 70_000)
    out = decode(decoder, event)
    assert out.reason == "too_large" and "65536" in out.detail


@pytest.mark.parametrize("event_type, field, value, reason", [
    ("call.queued", "type", "call.unknown", "unknown_type"),
    ("call.queued", "type", 7, "unknown_type"),
    ("call.queued", "type", None, "unknown_type"),
    ("call.queued", "v", 2, "unsupported_version"),
    ("call.queued", "v", "1", "unsupported_version"),
    ("call.queued", "event_id", 17, "wrong_type"),
    ("call.queued", "event_id", "", "bad_value"),
    ("call.queued", "event_id", "x" * 257, "bad_value"),
    ("call.queued", "event_id", "tab\there", "bad_value"),
    ("call.queued", "ts_ms", 1.79e12, "wrong_type"),
    ("call.queued", "ts_ms", "1790000000000", "wrong_type"),
    ("call.queued", "ts_ms", True, "wrong_type"),
    ("call.queued", "ts_ms", NOW_MS + 301_000, "ts_in_future"),
    ("call.queued", "ts_ms", 0, "ts_too_old"),
    ("call.queued", "ts_ms", -5, "ts_too_old"),
    ("call.queued", "tenant", "a/b", "bad_value"),
    ("call.queued", "tenant", ["acme"], "wrong_type"),
    ("call.queued", "source", 5, "wrong_type"),
    ("call.queued", "queue", "sales/emea", "bad_value"),
    ("call.queued", "queue", "", "bad_value"),
    ("call.queued", "call_id", {"id": 1}, "wrong_type"),
    ("call.queued", "caller", "+49 30 1234567", "bad_value"),
    ("call.queued", "caller", "00493012345678", "bad_value"),
    ("call.queued", "caller", "(555) 123-4567", "bad_value"),
    ("call.queued", "caller", "tel:+15551234567", "bad_value"),
    ("call.queued", "caller", "sip:+4930123456@pbx.example", "bad_value"),
    ("call.transferred", "target", "+49 30 1234567", "bad_value"),
    ("call.answered", "agent_id", "team/a7", "bad_value"),
    ("call.queued", "priority", -1, "out_of_range"),
    ("call.queued", "priority", 1.5, "wrong_type"),
    ("call.queued", "position", 10**9, "out_of_range"),
    ("call.answered", "agent_id", 7, "wrong_type"),
    ("call.answered", "wait_ms", -1, "negative_duration"),
    ("call.answered", "wait_ms", 12.0, "wrong_type"),
    ("call.answered", "wait_ms", False, "wrong_type"),
    ("call.answered", "wait_ms", "12", "wrong_type"),
    ("call.answered", "wait_ms", MAX_DURATION_MS + 1, "out_of_range"),
    ("call.answered", "wait_ms", 2**64 - 1, "out_of_range"),
    ("call.abandoned", "wait_ms", -30_000, "negative_duration"),
    ("call.dequeued", "reason", "bored", "bad_value"),
    ("call.dequeued", "reason", 3, "wrong_type"),
    ("call.ended", "talk_ms", -1, "negative_duration"),
    ("call.ended", "hold_ms", -1, "negative_duration"),
    ("call.wrapup_ended", "acw_ms", -1, "negative_duration"),
    ("call.wrapup_ended", "disposition", 3, "wrong_type"),
    ("call.wrapup_ended", "disposition", "d" * 2000, "bad_value"),
    ("call.transferred", "kind", "warm", "bad_value"),
    ("agent.state", "state", "sleeping", "bad_value"),
    ("agent.state", "agent_id", "a/7", "bad_value"),
    ("agent.state", "queues", "sales", "wrong_type"),
    ("agent.state", "queues", ["sales", 3], "wrong_type"),
    ("agent.state", "queues", ["sales/x"], "bad_value"),
    ("agent.state", "queues", ["q"] * 1001, "out_of_range"),
])
def test_field_rejections(decoder, event_type, field, value, reason):
    event = make_event(event_type, **{field: value})
    key = event_key(make_event(event_type)).encode()
    out = decode(decoder, event, key=key)
    assert isinstance(out, Rejection), out
    assert (out.reason, out.field) == (reason, field), out
    assert out.detail


def test_a_phone_like_number_is_fine_when_it_is_a_hash(decoder):
    assert isinstance(decode(decoder, make_event("call.queued", caller="h:4915123456789a")), dict)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_key_must_match_the_event(decoder, event_type):
    event = make_event(event_type)
    assert isinstance(decode(decoder, event, key=event_key(event).encode()), dict)
    for key in (None, b"acme/other", b"other/" + event_key(event).split("/", 1)[1].encode()):
        out = decode(decoder, event, key=key)
        assert out.reason == "key_mismatch", (key, out)


def test_keys_have_the_documented_shape():
    assert event_key(make_event("call.queued")) == "acme/sales"
    assert event_key(make_event("agent.state")) == "acme/agent/a7"


def test_key_check_can_be_disabled_for_files():
    decoder = Decoder(max_message_bytes=4096, max_future_skew_ms=0, max_age_ms=10**12,
                      check_key=False)
    assert isinstance(decoder.decode(orjson.dumps(make_event("call.queued")), None, NOW_MS), dict)


def test_every_documented_reason_is_reachable_and_only_those():
    # The parametrised cases above and these together produce every reason in REASONS.
    seen = {"too_large", "not_json", "not_object", "key_mismatch", "missing_field", "unknown_type",
            "unsupported_version", "wrong_type", "bad_value", "negative_duration", "out_of_range",
            "ts_in_future", "ts_too_old"}
    assert seen == set(REASONS)


def test_from_settings_converts_units():
    from streams.settings import IngestSettings

    d = Decoder.from_settings(IngestSettings(max_future_skew_s=10, max_age_days=2))
    assert (d.max_future_skew_ms, d.max_age_ms) == (10_000, 2 * 86_400_000)
