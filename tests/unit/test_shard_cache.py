"""A shard value reuses the JSON of queues that did not change since the last one; it must
always be byte for byte what encoding every queue anew gives, whatever moved the state:
applied rows, duplicates and late events, closes by watermark and by heartbeat, agents,
open calls forgotten after their TTL, minute panes leaving the hour, realtime snapshots."""

from __future__ import annotations

import random
from typing import Any

from streams.columns import ColumnBatch, build_batch
from streams.engine import PartitionEngine
from streams.settings import EngineSettings, QueueSettings
from tests.eventgen import call_events

ENGINE = EngineSettings(interval_s=900, allowed_lateness_s=120, idle_close_s=60,
                        open_call_ttl_s=600, shards_per_partition=4)
T0_MS = 1_700_000_100_000 // 900_000 * 900_000


def _events() -> list[dict[str, Any]]:
    events = call_events(T0_MS, 600, queues=7, duplicates=0.05, disorder_ms=20_000, late=0.02,
                         gap_ms=9_000)
    # Then one tenant goes on alone for two hours: the others' minute panes leave the hour.
    events += call_events(events[-1]["ts_ms"] + 1_000, 400, queues=2, tenants=("initech",),
                          gap_ms=18_000)
    rng = random.Random(3)
    # Lost outcomes leave calls open until their TTL; agents log in and out of queues.
    kept = [e for e in events if e["type"] == "call.queued" or rng.random() > 0.1]
    mixed: list[dict[str, Any]] = []
    for i, event in enumerate(kept):
        mixed.append(event)
        if i % 25 == 0:
            mixed.append({"event_id": f"agent-{i}", "type": "agent.state",
                          "ts_ms": event["ts_ms"], "tenant": event["tenant"],
                          "agent_id": f"ag{i % 4}", "state": rng.choice(["available", "away"]),
                          "queues": [event["queue"], "q6"]})
    return mixed


def _fresh(engine: PartitionEngine, shard: int) -> bytes:
    """The shard encoded anew, leaving every queue's cache as it was."""
    kept = {key: (q.encoded, q.encoded_panes) for key, q in engine.queues.items()}
    for q in engine.queues.values():
        q.changed()
        q.encoded_panes = []
    value = engine.shard_value(shard)
    for key, (encoded, rows) in kept.items():
        engine.queues[key].encoded, engine.queues[key].encoded_panes = encoded, rows
    return value


def test_cached_shard_values_equal_values_encoded_anew():
    engine = PartitionEngine(0, ENGINE, QueueSettings())
    events = _events()
    rows = list(enumerate(events))
    checked = 0
    for n, i in enumerate(range(0, len(rows), 17)):
        chunk = rows[i:i + 17]
        step = engine.apply(build_batch("events", 0, chunk, chunk[0][0], chunk[-1][0]))
        engine.apply_agent_updates(step.agent_updates)
        if n % 3 == 0:
            engine.realtime(emitted_at_ms=0)
        if n % 5 == 0:
            # A quiet spell the wall clock reports: idle queues close.
            clock = max(e["ts_ms"] for _, e in chunk) + 150_000
            engine.apply(ColumnBatch.heartbeat("events", 0, clock, clock - 60_000))
        for shard in range(ENGINE.shards_per_partition):
            cached = engine.shard_value(shard)
            assert cached == _fresh(engine, shard), (n, shard)
            checked += 1
    assert checked > 100
    counts = engine.counts
    # The run went through every kind of change the cache must notice.
    assert counts["duplicates"] and counts["late"] and counts["open_calls_expired"]
    assert counts["agent_updates"]
