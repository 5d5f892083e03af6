"""Stage 1's fast path against the exact decoder: same verdicts, same columns, same order.

The reference here is the exact path alone: every message through ``Decoder.decode`` and the
valid ones through ``build_batch``. The condenser under test takes the fast path first and
the exact decoder only for what the fast path is unsure of; whatever the mix, the batch and
the dead letters must be the same.
"""

from __future__ import annotations

import json
import re

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.columns import ColumnBatch, build_batch
from streams.contract import EVENT_TYPES, Decoder, event_key
from streams.fastdecode import FastCondenser
from streams.ingest import Condenser
from streams.settings import IngestSettings
from tests.unit.fuzz.invariants import FUZZ, NOW_MS, example, key_for
from tests.unit.fuzz.strategies import encode, field_names, replacement_values

TOPIC = "callcenter.events.v1"
DECODER = Decoder.from_settings(IngestSettings())
_PHONE = re.compile(r"(?:tel:|sip:)?\+?\(?[0-9][0-9 ().\-/]{5,}(?:@.*)?")


def reference(messages, now_ms=NOW_MS, decoder=DECODER):
    """(events of the batch, offsets, rejections) by the exact decoder alone."""
    valid, dead = [], []
    for offset, key, value in messages:
        outcome = decoder.decode(value, key, now_ms)
        if type(outcome) is dict:
            valid.append((offset, outcome))
        else:
            dead.append((offset, outcome))
    batch = build_batch(TOPIC, 0, valid, messages[0][0], messages[-1][0]) if valid else None
    return batch, dead


def assert_same(messages, now_ms=NOW_MS, decoder=DECODER):
    expected, expected_dead = reference(messages, now_ms, decoder)
    batch, dead = Condenser(decoder, TOPIC).condense(0, messages, now_ms)
    assert [(d.offset, d.rejection) for d in dead] == expected_dead
    if expected is None:
        assert batch is None
        return None
    assert batch is not None
    again = ColumnBatch.from_bytes(batch.to_bytes())
    for got in (batch, again):
        assert list(got.events()) == list(expected.events())
        assert got.groups == expected.groups
        for name, column in expected.arrays.items():
            assert got.arrays[name].tolist() == column.tolist(), name
        assert got.agent_queues == expected.agent_queues
        assert (got.first_offset, got.last_offset) == (messages[0][0], messages[-1][0])
    return batch


def message(event, offset, style="utf-8", key=None):
    return offset, key_for(event) if key is None else key, encode(event, style)


def test_simulated_center_takes_the_fast_path_for_every_event(tmp_path):
    """The shapes real producers send must never need the exact decoder: a fast path that
    silently declined them would keep every result right and lose all the speed."""
    from streams.cli import main

    out = tmp_path / "events.jsonl"
    assert main(["simulate", "--hours", "2", "--out", str(out),
                 "--start", "2026-01-05T08:00:00+00:00"]) == 0
    lines = out.read_bytes().splitlines()
    messages = [(i, event_key({"tenant": "default", **orjson.loads(line)}).encode(), line)
                for i, line in enumerate(lines)]
    now_ms = max(orjson.loads(line)["ts_ms"] for line in lines) + 1000
    batch, unsure = FastCondenser(DECODER).condense(TOPIC, 0, *zip(*messages), now_ms)
    assert unsure.tolist() == []
    assert batch is not None and batch.rows == len(lines)
    assert_same(messages, now_ms)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_each_example_is_accepted_fast(event_type):
    event = example(event_type)
    batch, unsure = FastCondenser(DECODER).condense(TOPIC, 0, *zip(message(event, 7)), NOW_MS)
    assert unsure.tolist() == [] and batch is not None
    assert_same([message(event, 7)])


@pytest.mark.parametrize("change, fast", [
    ({"queue": "Störungen"}, True),                 # UTF-8 names: fast
    ({"tenant": "müller-gmbh"}, True),
    ({"queue": "sup\u00a0port"}, False),            # not printable: the exact decoder refuses
    ({"queue": "emoji\U0001F600"}, False),          # beyond the table: exact decoder decides
    ({"queue": "a/b"}, False),
    ({"queue": "q" * 256}, True),
    ({"queue": "q" * 257}, False),
    ({"tenant": None}, True),                       # the default tenant
    ({"v": 1}, True),
    ({"v": None}, True),
    ({"v": 2}, False),
    ({"v": True}, False),
    ({"ts_ms": NOW_MS + 301_000}, False),
    ({"ts_ms": 1.5}, False),
    ({"x_unknown": {"nested": 1}}, False),          # outside the fast subset: exact decoder
    ({"x_unknown": [1, 2]}, False),
    ({"x_unknown": ["a", "b"], "y": None, "z": True}, True),
    ({"source": "x" * 1024}, True),
    ({"source": "x" * 1025}, False),
])
def test_variants_agree(change, fast):
    event = {**example("call.queued"), **change}
    event = {k: v for k, v in event.items() if v is not None or k == "v"}
    msg = message(event, 3)
    _, unsure = FastCondenser(DECODER).condense(TOPIC, 0, *zip(msg), NOW_MS)
    assert (unsure.size == 0) is fast
    assert_same([msg])


@pytest.mark.parametrize("raw", [
    b'{"event_id":"e\\u0031","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"c"}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"c","queue":"r"}',
    b'  {"event_id":"e1", "type" : "call.queued" ,"ts_ms":%d,"queue":"q","call_id":"c"}\n ',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"c"} x',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"c",}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":0%d,"queue":"q","call_id":"c"}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d.0,"queue":"q","call_id":"c"}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%de0,"queue":"q","call_id":"c"}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"c","p":-0}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"c","p":nul}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"c","p":[]}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"\xc3("}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"\xed\xa0\x80"}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"a\x01"}',
    b'{"event_id":"e1","type":"call.queued","ts_ms":%d,"queue":"q","call_id":"c"',
    b'["event_id"]',
    b'{}',
    b'',
])
def test_hand_written_messages_agree(raw):
    value = raw.replace(b"%d", str(NOW_MS - 1000).encode()) if b"%d" in raw else raw
    assert_same([(1, b"default/q", value)])


def test_tombstones_and_missing_keys_agree():
    event = example("call.answered")
    assert_same([(1, None, encode(event, "utf-8")), (2, key_for(event), None),
                 message(event, 3), (4, b"acme/wrong", encode(event, "utf-8"))])


@pytest.mark.parametrize("caller", [
    "+49 30 1234567", "tel:+49301234567", "sip:0301234567@pbx", "(030) 123-45", "12345",
    "123456", "1234 5", "12345a", "tel:abc", "+(1)23456", "(+1)23456", "0" * 6 + "@", "hash-9f86",
    "9f86d081884c7d65", "sip:+", "1-2-3-4-5-6", "1@2", "sip:123456789", "tel:", "tel:12345678",
])
def test_phone_numbers_are_refused_alike(caller):
    event = {**example("call.queued"), "caller": caller}
    msg = message(event, 1)
    batch = assert_same([msg])
    assert (batch is None) is bool(_PHONE.fullmatch(caller))


@FUZZ
@given(caller=st.text(st.sampled_from("0123456789 ().-/+@:telsipx"), max_size=16))
def test_phone_rule_matches_the_regular_expression(caller):
    assume_valid = caller and caller.isprintable()
    event = {**example("call.queued"), "caller": caller}
    batch = assert_same([message(event, 1)])
    if assume_valid:
        assert (batch is None) is bool(_PHONE.fullmatch(caller))


def _mixed_batch(draw_changes):
    messages = []
    for offset, (event_type, changes, style) in enumerate(draw_changes, start=100):
        event = {**example(event_type), **changes}
        messages.append(message(event, offset, style))
    return messages


@FUZZ
@given(rows=st.lists(st.tuples(st.sampled_from(EVENT_TYPES),
                               st.dictionaries(field_names, replacement_values, max_size=2),
                               st.sampled_from(["ascii", "utf-8"])), min_size=1, max_size=12))
def test_mixed_batches_agree(rows):
    """Fast rows, exact rows and dead letters interleaved in one poll keep their order, their
    groups and their queue lists."""
    assert_same(_mixed_batch(rows))


@FUZZ
@given(rows=st.lists(st.tuples(
    st.sampled_from(EVENT_TYPES),
    st.fixed_dictionaries({}, optional={
        "tenant": st.sampled_from(["acme", "globex", "müller"]),
        "queue": st.sampled_from(["support", "sales", "Störung", "s\\t"]),
        "agent_id": st.sampled_from(["a1", "a2", "ä3"]),
        "queues": st.lists(st.sampled_from(["support", "sales", "x/y", "Störung"]), max_size=3),
        "event_id": st.sampled_from(["e1", "e2", "e\u00e9"]),
    }), st.sampled_from(["ascii", "utf-8"])), min_size=1, max_size=30))
def test_many_groups_and_lists_agree(rows):
    """Few distinct keys, many rows: group interning and queue lists across fast and exact
    rows (``ascii`` escapes every non-ASCII character, so those rows take the exact path)."""
    assert_same(_mixed_batch(rows))


def test_large_batch_of_many_queues_agrees():
    rng = np.random.default_rng(3)
    messages = []
    for i in range(3000):
        event_type = EVENT_TYPES[int(rng.integers(len(EVENT_TYPES)))]
        event = {**example(event_type), "event_id": f"e{i}",
                 "tenant": f"t{int(rng.integers(3))}"}
        if event_type == "agent.state":
            event["agent_id"] = f"a{int(rng.integers(50))}"
        else:
            event["queue"] = f"q{int(rng.integers(400))}"
        style = "ascii" if rng.random() < 0.05 else "utf-8"
        if rng.random() < 0.02:
            event["ts_ms"] = "late"
        messages.append(message(event, 10 + i, style))
    assert_same(messages)


def test_duplicate_field_names_keep_the_exact_decoders_choice():
    text = json.dumps(example("call.answered"))[:-1] + ', "wait_ms": 5}'
    assert_same([(1, key_for(example("call.answered")), text.encode())])
