"""Valid events of every type with one field at a time set to a wrong type or an absurd value:
the dead letter names that field (or the whole message), never another one, and nothing raises."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from streams.contract import EVENT_TYPES, Rejection
from tests.unit.fuzz.invariants import FUZZ, check_message, example, key_for
from tests.unit.fuzz.strategies import encode, field_names, replacement_values

# Rejections about the message as a whole, not one field.
_WHOLE_MESSAGE = {"not_json", "too_large", "key_mismatch"}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@settings(FUZZ, max_examples=120)
@given(name=field_names, value=replacement_values)
def test_one_field_replaced(event_type: str, name: str, value: Any) -> None:
    event = example(event_type)
    event[name] = value
    outcome = check_message(encode(event, "utf-8"), key_for(event))
    if isinstance(outcome, Rejection) and outcome.reason not in _WHOLE_MESSAGE:
        if name != "type":  # another type asks for other fields
            assert outcome.field == name, (name, outcome)
    elif type(outcome) is dict:
        assert outcome["event_id"] == event.get("event_id") or name == "event_id"


@settings(FUZZ, max_examples=150)
@given(name=field_names, value=replacement_values)
def test_one_field_dropped_or_nulled_then_replaced(name: str, value: Any) -> None:
    """The same with an agent event whose optional fields are absent: replacing an absent
    field exercises the 'unknown extra field' path of every type's neighbours."""
    event = {k: v for k, v in example("agent.state").items() if k not in ("reason", "queues")}
    event[name] = value
    check_message(encode(event, "ascii"), key_for(event))
