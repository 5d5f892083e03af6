"""Arbitrary bytes and arbitrary JSON values through the decoder and the condenser: each one is
a valid event (schema-valid, unchanged through a column batch) or a dead letter with a known
reason, never an exception."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streams.contract import Rejection
from tests.unit.fuzz.invariants import FUZZ, check_message, example, key_for
from tests.unit.fuzz.strategies import (
    deep_values,
    encode,
    encodings,
    event_types,
    field_names,
    hostile_text,
    json_values,
    replacement_values,
)

keys = st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([b"acme/support",
                                                                     b"default/support"]))


@FUZZ
@given(raw=st.binary(max_size=600), key=keys)
def test_arbitrary_bytes(raw: bytes, key: bytes | None) -> None:
    check_message(raw, key)


@FUZZ
@given(value=st.one_of(json_values, deep_values), style=encodings, key=keys)
def test_arbitrary_json_values(value: Any, style: str, key: bytes | None) -> None:
    outcome = check_message(encode(value, style), key)
    if type(value) is not dict:
        assert isinstance(outcome, Rejection)


@FUZZ
@given(event_type=event_types, extra=st.dictionaries(st.one_of(hostile_text, field_names),
                                                     replacement_values, max_size=4),
       style=encodings)
def test_events_with_hostile_fields(event_type: str, extra: dict[str, Any], style: str) -> None:
    """Doc examples with fields added or replaced, sent with the key a correct producer
    would compute, so the values alone decide."""
    event = {**example(event_type), **extra}
    check_message(encode(event, style), key_for(event))


@FUZZ
@given(event_type=event_types, style=st.sampled_from(["ascii", "utf-8"]))
def test_unchanged_examples_are_valid(event_type: str, style: str) -> None:
    """The oracle's other branch: the strategies above do reach valid events."""
    event = example(event_type)
    assert type(check_message(encode(event, style), key_for(event))) is dict
