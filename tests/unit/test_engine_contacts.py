"""The engine's contacts for first-contact resolution, and the promise its marks make.

The FCR stage finalises an interval once every partition's mark has passed its end; that is
only right if no engine ever sends a contact earlier than a mark it sent before. Here, over
streams with duplicates, disorder, late events, idle closes and any batch boundaries: the
contacts are exactly the applied ``call.queued`` events with a caller, and every contact
comes at or after every earlier mark of its partition.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.columns import ColumnBatch, build_batch
from streams.engine import PartitionEngine
from streams.settings import EngineSettings, QueueSettings
from tests.eventgen import call_events

I_MS = 900_000
START = (1_790_000_000_000 // I_MS) * I_MS


@settings(derandomize=True, database=None, deadline=None, max_examples=40)
@given(seed=st.integers(0, 1000), batch=st.integers(1, 400), idle_at=st.integers(0, 3))
def test_contacts_are_the_applied_queued_calls_and_never_precede_a_mark(seed, batch, idle_at):
    events = call_events(START, 600, queues=3, seed=seed, duplicates=0.05, disorder_ms=40_000,
                         late=0.05, gap_ms=4000, callers=30)
    engine = PartitionEngine(0, EngineSettings(), QueueSettings())
    mark = None
    contacts = []
    records = []
    rows = list(enumerate(events))
    chunks = [rows[i:i + batch] for i in range(0, len(rows), batch)]
    for n, chunk in enumerate(chunks):
        step = engine.apply(build_batch("events", 0, chunk, chunk[0][0], chunk[-1][0]))
        steps = [step]
        if n == idle_at:  # a quiet spell: the wall clock stands in for the partition clock
            clock = step_clock = max(e["ts_ms"] for _, e in chunk) + 120_000
            steps.append(engine.apply(ColumnBatch.heartbeat("events", 0, step_clock,
                                                            clock - 3_600_000)))
        for s in steps:
            records += s.records
            for contact in s.contacts:
                assert mark is None or contact.ts_ms >= mark, (contact, mark)
            contacts += s.contacts
            if s.fcr_mark_ms is not None:
                assert mark is None or s.fcr_mark_ms > mark
                assert s.fcr_mark_ms % I_MS == 0
                mark = s.fcr_mark_ms
    records += engine.close_all().records
    got = {(c.tenant, c.queue, c.call_id, c.ts_ms, c.caller) for c in contacts}
    assert len(got) == len(contacts) > 0, "a contact sent twice"
    # Every contact is a queued call of the stream, with its caller, queue and time...
    queued = {(e["tenant"], e["queue"], e["call_id"], e["ts_ms"], e["caller"])
              for e in events if e["type"] == "call.queued"}
    assert got <= queued
    # ...and there are as many per interval as the interval record's applied queued calls.
    per_interval: dict[tuple, int] = {}
    for c in contacts:
        key = (c.tenant, c.queue, c.ts_ms - c.ts_ms % I_MS)
        per_interval[key] = per_interval.get(key, 0) + 1
    assert per_interval == {(r["tenant"], r["queue"], r["interval_start_ms"]): r["entered"]
                            for r in records if r["entered"]}


def test_no_caller_no_contact_and_a_repeated_event_is_one_contact():
    engine = PartitionEngine(0, EngineSettings(), QueueSettings())
    queued = {"event_id": "e1", "type": "call.queued", "ts_ms": START, "tenant": "acme",
              "queue": "support", "call_id": "c1", "caller": "h:1", "v": 1}
    anonymous = {**queued, "event_id": "e2", "call_id": "c2"}
    del anonymous["caller"]
    step = engine.apply(build_batch("events", 0, [(1, queued), (2, anonymous), (3, dict(queued))],
                                    1, 3))
    assert [(c.caller, c.call_id, c.queue) for c in step.contacts] == [("h:1", "c1", "support")]
    assert step.fcr_mark_ms == (START - 180_000) // I_MS * I_MS
