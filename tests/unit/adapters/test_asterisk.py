"""queue_log lines -> contract events, against fixtures written by hand from the queue_log format."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import orjson
import pytest

from streams.adapters.asterisk import (
    LINE_REASONS, MAPPED_EVENTS, AgentRoster, QueueLogMapper, Skipped, caller_key, parse_line)
from streams.contract import Decoder, Rejection, event_key

FIXTURES = Path(__file__).parent / "fixtures"
NOW_MS = 1_741_100_000_000  # shortly after the fixtures' events
SALT = b"test-salt"


def lines_of(name: str) -> list[bytes]:
    return (FIXTURES / name).read_bytes().split(b"\n")


def mapper(**kwargs) -> QueueLogMapper:
    return QueueLogMapper(tenant="acme", source="asterisk-qlog@test", caller_salt=SALT, **kwargs)


def decoder() -> Decoder:
    return Decoder(max_message_bytes=1_048_576, max_future_skew_ms=300_000, max_age_ms=10**12)


def checked(outcome):
    """The verdict the adapter acts on: the decoder's, for a mapped event."""
    if not isinstance(outcome, dict):
        return outcome
    return decoder().decode(orjson.dumps(outcome), event_key(outcome).encode(), NOW_MS)


def expected_hash(callerid: str) -> str:
    return "h:" + hmac.new(SALT, callerid.encode(), hashlib.sha256).hexdigest()[:32]


# Line number -> what the line must become. Fields not listed (event_id, tenant, source, v)
# are checked separately.
EVERY_EVENT = {
    1: Skipped("QUEUESTART"),
    2: {"type": "agent.state", "ts_ms": 1741079010000, "agent_id": "Agent:1001",
        "state": "available", "queues": []},
    3: {"type": "agent.state", "ts_ms": 1741079020000, "agent_id": "Agent:1001",
        "state": "available", "queues": ["support"]},
    4: {"type": "agent.state", "ts_ms": 1741079021000, "agent_id": "Agent:1001",
        "state": "available", "queues": ["billing", "support"]},
    5: {"type": "agent.state", "ts_ms": 1741079030000, "agent_id": "PJSIP:2002",
        "state": "available", "queues": ["support"]},
    6: {"type": "call.queued", "ts_ms": 1741079700000, "call_id": "1741079700.42",
        "queue": "support", "caller": expected_hash("+15551234567"), "position": 1},
    7: Skipped("DID"),
    8: Skipped("RINGNOANSWER"),
    9: {"type": "call.answered", "ts_ms": 1741079731000, "call_id": "1741079700.42",
        "queue": "support", "agent_id": "PJSIP:2002", "wait_ms": 31000},
    10: {"type": "call.ended", "ts_ms": 1741079996000, "call_id": "1741079700.42",
         "queue": "support", "agent_id": "PJSIP:2002", "talk_ms": 265000, "x_ended_by": "agent"},
    11: {"type": "call.queued", "ts_ms": 1741079702000, "call_id": "1741079702.43",
         "queue": "support", "position": 2},
    12: {"type": "call.abandoned", "ts_ms": 1741079750000, "call_id": "1741079702.43",
         "queue": "support", "wait_ms": 48000},
    13: {"type": "call.queued", "ts_ms": 1741079705000, "call_id": "1741079705.44",
         "queue": "billing", "position": 1},
    14: {"type": "call.dequeued", "ts_ms": 1741080005000, "call_id": "1741079705.44",
         "queue": "billing", "reason": "timeout", "wait_ms": 300000},
    15: {"type": "call.queued", "ts_ms": 1741079706000, "call_id": "1741079706.45",
         "queue": "billing", "caller": expected_hash("1002"), "position": 2},
    16: {"type": "call.dequeued", "ts_ms": 1741079716000, "call_id": "1741079706.45",
         "queue": "billing", "reason": "key", "wait_ms": 10000},
    17: {"type": "call.queued", "ts_ms": 1741079720000, "call_id": "1741079720.46",
         "queue": "sales", "caller": expected_hash("1003"), "position": 1},
    18: {"type": "call.dequeued", "ts_ms": 1741079721000, "call_id": "1741079720.46",
         "queue": "sales", "reason": "empty", "wait_ms": 1000},
    19: {"type": "call.queued", "ts_ms": 1741079790000, "call_id": "1741079790.47",
         "queue": "support", "caller": expected_hash("1004"), "position": 1},
    20: {"type": "call.answered", "ts_ms": 1741079800000, "call_id": "1741079790.47",
         "queue": "support", "agent_id": "Agent:1001", "wait_ms": 10000},
    21: {"type": "call.transferred", "ts_ms": 1741079900000, "call_id": "1741079790.47",
         "queue": "support", "agent_id": "Agent:1001", "target": "2100"},
    22: {"type": "call.queued", "ts_ms": 1741079801000, "call_id": "1741079801.48",
         "queue": "support", "caller": expected_hash("1005"), "position": 1},
    23: {"type": "call.answered", "ts_ms": 1741079805000, "call_id": "1741079801.48",
         "queue": "support", "agent_id": "PJSIP:2002", "wait_ms": 4000},
    24: {"type": "call.transferred", "ts_ms": 1741079905000, "call_id": "1741079801.48",
         "queue": "support", "agent_id": "PJSIP:2002", "target": "billing", "kind": "blind"},
    25: {"type": "call.queued", "ts_ms": 1741079802000, "call_id": "1741079802.49",
         "queue": "billing", "caller": expected_hash("1006"), "position": 1},
    26: {"type": "call.answered", "ts_ms": 1741079806000, "call_id": "1741079802.49",
         "queue": "billing", "agent_id": "Agent:1001", "wait_ms": 4000},
    27: {"type": "call.transferred", "ts_ms": 1741079906000, "call_id": "1741079802.49",
         "queue": "billing", "agent_id": "Agent:1001", "target": "VoiceMail", "kind": "attended",
         "x_transfer_method": "APP"},
    28: {"type": "call.queued", "ts_ms": 1741079907000, "call_id": "1741079907.53",
         "queue": "support", "caller": expected_hash("1007"), "position": 1},
    29: {"type": "call.answered", "ts_ms": 1741079910000, "call_id": "1741079907.53",
         "queue": "support", "agent_id": "Agent:1001", "wait_ms": 3000},
    30: {"type": "call.ended", "ts_ms": 1741080010250, "call_id": "1741079907.53",
         "queue": "support", "agent_id": "Agent:1001", "talk_ms": 100000, "x_ended_by": "caller"},
    31: {"type": "agent.state", "ts_ms": 1741080100000, "agent_id": "Agent:1001",
         "state": "away", "reason": "lunch", "queues": ["billing", "support"]},
    32: {"type": "agent.state", "ts_ms": 1741080101000, "agent_id": "PJSIP:2002",
         "state": "away", "reason": "meeting", "queues": ["support"]},
    33: {"type": "agent.state", "ts_ms": 1741080200000, "agent_id": "Agent:1001",
         "state": "available", "queues": ["billing", "support"]},
    34: {"type": "agent.state", "ts_ms": 1741080201000, "agent_id": "PJSIP:2002",
         "state": "available", "queues": ["support"]},
    # Leaving one queue of two is not a logout; leaving the last one is.
    35: {"type": "agent.state", "ts_ms": 1741080300000, "agent_id": "Agent:1001",
         "state": "available", "queues": ["support"]},
    36: {"type": "agent.state", "ts_ms": 1741080301000, "agent_id": "PJSIP:2002",
         "state": "logged_out", "queues": []},
    37: {"type": "agent.state", "ts_ms": 1741080400000, "agent_id": "Agent:1001",
         "state": "logged_out", "queues": ["support"]},
    38: Skipped("CONFIGRELOAD"),
}

# Line number -> the reason its dead letter carries (mapper reasons, then decoder reasons).
BAD_LINES = {
    1: ("not_queue_log", None),
    2: ("not_queue_log", None),
    3: ("bad_field", "epoch"),
    4: ("bad_field", "event"),
    5: ("bad_field", "uniqueid"),
    6: ("bad_field", "queue"),
    7: ("bad_field", "agent"),
    8: ("missing_field", "data1"),
    9: ("bad_field", "data1"),
    10: ("missing_field", "data3"),
    11: ("missing_field", "data2"),
    12: ("negative_duration", "wait_ms"),
    13: ("bad_value", "queue"),
    14: ("ts_in_future", "ts_ms"),
    15: ("out_of_range", "wait_ms"),
    16: ("not_queue_log", None),
    17: ("bad_field", "agent"),
    18: ("bad_field", "queue"),
    # 19 is blank: counted, not dead-lettered
    20: ("missing_field", "data4"),
    21: ("missing_field", "data1"),
    22: ("not_queue_log", None),  # the last line, without its newline
}


def test_every_line_of_the_fixture_maps_as_documented():
    m = mapper()
    raw = lines_of("every_event.queue_log")
    assert raw[-1] == b""  # the file ends with a newline
    assert len(raw) - 1 == len(EVERY_EVENT)
    for number, line in enumerate(raw[:-1], start=1):
        outcome = checked(m.map_line(line))
        expected = EVERY_EVENT[number]
        if isinstance(expected, Skipped):
            assert outcome == expected, number
            continue
        assert isinstance(outcome, dict), (number, outcome)
        common = {k: outcome.pop(k) for k in ("event_id", "tenant", "source", "v")}
        assert outcome == expected, number
        assert common["tenant"] == "acme" and common["source"] == "asterisk-qlog@test"
        assert common["v"] == 1


def test_the_fixture_covers_every_mapped_event():
    names = {line.split(b"|")[4].decode() for line in lines_of("every_event.queue_log") if line}
    assert MAPPED_EVENTS <= names
    assert len(MAPPED_EVENTS) == 19


def test_every_bad_line_is_rejected_with_its_reason():
    m = mapper()
    raw = lines_of("bad_lines.queue_log")
    assert len(raw) == 22 and raw[-1]  # the last line has no newline
    for number, line in enumerate(raw, start=1):
        if number == 19:
            assert line == b""
            continue
        outcome = checked(m.map_line(line))
        assert isinstance(outcome, Rejection), (number, outcome)
        assert (outcome.reason, outcome.field) == BAD_LINES[number], (number, outcome)
        assert outcome.detail
        if outcome.reason in LINE_REASONS:
            assert outcome.reason in ("not_queue_log", "bad_field", "missing_field")


def test_event_ids_are_deterministic_and_distinct():
    raw = [line for line in lines_of("every_event.queue_log") if line]
    first = [mapper().map_line(line) for line in raw]
    again = [mapper().map_line(line) for line in raw]
    ids = [e["event_id"] for e in first if isinstance(e, dict)]
    assert ids == [e["event_id"] for e in again if isinstance(e, dict)]
    assert len(set(ids)) == len(ids) == 34
    assert ids[0].startswith("ast-NONE-AGENTLOGIN-1741079010-")
    # Same call, event and second, other data: another id.
    a = mapper().map_line(b"1741079700|1.1|q|NONE|ABANDON|1|1|5")
    b = mapper().map_line(b"1741079700|1.1|q|NONE|ABANDON|1|1|6")
    assert a["event_id"] != b["event_id"]


def test_caller_is_a_keyed_hash_or_absent_never_the_number():
    line = b"1741079700|1.1|q|NONE|ENTERQUEUE||+15551234567|1"
    with_salt = mapper().map_line(line)
    assert with_salt["caller"] == expected_hash("+15551234567")
    assert b"5551234567" not in orjson.dumps(with_salt)
    other_salt = QueueLogMapper(tenant="t", source="s", caller_salt=b"other").map_line(line)
    assert other_salt["caller"] != with_salt["caller"]
    no_salt = QueueLogMapper(tenant="t", source="s").map_line(line)
    assert "caller" not in no_salt and b"5551234567" not in orjson.dumps(no_salt)
    for anonymous in ("", "anonymous", "Unknown", "<unknown>"):
        assert caller_key(anonymous, SALT) is None


def test_epochs_with_fractions_keep_milliseconds_and_cut_the_rest():
    assert parse_line(b"1741079700.25|u|q|a|X").ts_ms == 1741079700250
    assert parse_line(b"1741079700.123999|u|q|a|X").ts_ms == 1741079700123
    assert parse_line(b"1741079700|u|q|a|X").ts_ms == 1741079700000
    assert parse_line(b"1741079700.|u|q|a|X").reason == "bad_field"
    assert parse_line(b"-1741079700|u|q|a|X").reason == "bad_field"


def test_windows_line_endings_are_read_and_ids_ignore_them():
    plain = mapper().map_line(b"1741079750|1.1|q|NONE|ABANDON|2|2|48")
    crlf = mapper().map_line(b"1741079750|1.1|q|NONE|ABANDON|2|2|48\r")
    assert crlf == plain and crlf["wait_ms"] == 48000


def test_transfer_to_an_outside_number_carries_no_target():
    event = mapper().map_line(b"1741079900|1.1|q|Agent/1|TRANSFER|5551234567|out|10|100|1")
    assert event["type"] == "call.transferred" and "target" not in event
    assert isinstance(checked(event), dict)


@pytest.mark.parametrize("data, target", [
    (b"BRIDGE|a8c5e3f0-bridge|4|100|1", None),
    (b"LINK|PJSIP/2001-01|PJSIP/2002-02|4|100|1", None),
    (b"APP|VoiceMail|4|100|1", "VoiceMail"),
])
def test_attended_transfer_variants(data, target):
    event = mapper().map_line(b"1741079906|1.1|q|Agent/1|ATTENDEDTRANSFER|" + data)
    assert event["kind"] == "attended" and event.get("target") == target
    assert event["x_transfer_method"] == data.split(b"|")[0].decode()


def test_agent_membership_survives_a_snapshot():
    m = mapper()
    m.map_line(b"1741079020|NONE|support|PJSIP/7|ADDMEMBER|")
    m.map_line(b"1741079021|NONE|billing|PJSIP/7|PAUSE|training")
    restored = mapper(roster=AgentRoster.restore(orjson.loads(orjson.dumps(m.roster.snapshot()))))
    event = restored.map_line(b"1741079030|NONE|sales|PJSIP/7|ADDMEMBER|")
    assert event["queues"] == ["billing", "sales", "support"] and event["state"] == "available"
    assert restored.map_line(b"1741079031|NONE|NONE|PJSIP/7|PAUSEALL|")["state"] == "away"
    left = restored.map_line(b"1741079032|NONE|sales|PJSIP/7|REMOVEMEMBER|")
    assert left["state"] == "away" and left["queues"] == ["billing", "support"]


def test_mapped_events_pass_the_decoder_with_their_keys():
    m = mapper()
    keys = set()
    for line in lines_of("every_event.queue_log"):
        outcome = m.map_line(line) if line else None
        if isinstance(outcome, dict):
            assert isinstance(checked(dict(outcome)), dict)
            keys.add(event_key(outcome))
    assert keys == {"acme/support", "acme/billing", "acme/sales",
                    "acme/agent/Agent:1001", "acme/agent/PJSIP:2002"}
