"""Column batches: condensing valid events and the wire format."""

from __future__ import annotations

import numpy as np
import pytest

from streams.columns import ColumnBatch, build_batch
from streams.errors import BatchFormatError
from tests.unit.test_contract import EVENT_TYPES, make_event


def _rows():
    rows = []
    for offset, event_type in enumerate(EVENT_TYPES, start=100):
        event = make_event(event_type)
        event["event_id"] = f"e{offset}"
        event["v"] = 1
        rows.append((offset, event))
    # an answered call without wait_ms, and a second queue of another tenant
    rows.append((200, {**make_event("call.answered", wait_ms=None), "event_id": "e200", "v": 1}))
    rows.append((201, {**make_event("call.queued", tenant="globex", caller=None),
                       "event_id": "e201", "v": 1}))
    for _, event in rows:
        for name in [k for k, v in event.items() if v is None]:
            del event[name]
    return rows


def _contract_fields(event: dict) -> dict:
    known = {"event_id", "type", "ts_ms", "tenant", "queue", "call_id", "agent_id", "caller",
             "disposition", "wait_ms", "talk_ms", "hold_ms", "acw_ms", "reason", "kind", "state",
             "queues"}
    out = {k: v for k, v in event.items() if k in known}
    if event["type"] == "agent.state":
        out.pop("reason", None)  # the free-text reason of an agent state is not condensed
    return out


def test_build_and_round_trip_keep_every_engine_field():
    rows = _rows()
    batch = build_batch("events", 2, rows, first_offset=100, last_offset=201)
    again = ColumnBatch.from_bytes(batch.to_bytes())
    assert (again.source_topic, again.source_partition, again.first_offset, again.last_offset) == (
        "events", 2, 100, 201)
    assert again.rows == len(rows)
    assert again.groups == ["acme/sales", "acme/agent/a7", "globex/sales"]
    assert list(again.arrays["offset"]) == [offset for offset, _ in rows]
    assert list(again.events()) == [_contract_fields(event) for _, event in rows]


def test_absent_numbers_are_minus_one():
    batch = build_batch("events", 0, _rows(), 100, 201)
    answered_without_wait = batch.rows - 2
    assert batch.arrays["wait_ms"][answered_without_wait] == -1
    assert batch.arrays["talk_ms"][0] == -1


def test_arrays_have_fixed_dtypes():
    batch = ColumnBatch.from_bytes(build_batch("events", 0, _rows(), 100, 201).to_bytes())
    assert batch.arrays["ts_ms"].dtype == np.dtype("<i8")
    assert batch.arrays["kind"].dtype == np.dtype("<i1")
    assert batch.arrays["group"].dtype == np.dtype("<i4")


@pytest.mark.parametrize("damage", [
    lambda b: b"XXXX" + b[4:],
    lambda b: b[:3],
    lambda b: b[:8] + b"[" + b[9:],
    lambda b: b[:-9],
])
def test_damaged_bytes_raise_batch_format_error(damage):
    data = build_batch("events", 0, _rows(), 100, 201).to_bytes()
    with pytest.raises(BatchFormatError):
        ColumnBatch.from_bytes(damage(data))
