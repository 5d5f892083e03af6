"""Realtime records: rolling windows from 1-minute panes, calls waiting, agents fanned out to
queues; checked against plain-Python counts over the events, not against the engine's code."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from streams.agentstate import decode_updates, encode_updates, updates_by_partition
from streams.engine import PartitionEngine
from streams.replay import replay_lines
from streams.settings import EngineSettings, QueueSettings, Settings
from tests.unit.test_engine import T0, answered_call, batches_of, call_event, outcome

ENGINE = EngineSettings()
QUEUES = QueueSettings()
MINUTE_MS = 60_000


def agent(at_s: float, agent_id: str, state: str, queues: list[str] | None,
          tenant: str = "acme") -> dict[str, Any]:
    ts_ms = T0 + round(at_s * 1000)
    event = {"event_id": f"{tenant}-agent-{agent_id}-{ts_ms}", "type": "agent.state",
             "ts_ms": ts_ms, "tenant": tenant, "agent_id": agent_id, "state": state}
    if queues is not None:
        event["queues"] = queues
    return event


def a_busy_hour(rng: np.random.Generator) -> list[dict[str, Any]]:
    """70 minutes of calls on one queue: answered with random waits, some abandons."""
    events: list[dict[str, Any]] = []
    for n in range(400):
        at_s = float(rng.uniform(0, 70 * 60))
        wait_s = round(float(rng.exponential(25.0)), 3)
        if n % 7 == 0:
            events.append(call_event("call.queued", at_s, f"c{n}"))
            events.append(outcome("call.abandoned", f"c{n}", at_s + wait_s + 6, wait_s + 6))
        else:
            events.extend(answered_call(f"c{n}", at_s, wait_s))
    events.sort(key=lambda e: e["ts_ms"])
    return events


def expected_window(events: list[dict[str, Any]], now_ms: int, minutes: int) -> dict[str, Any]:
    first = now_ms - now_ms % MINUTE_MS - (minutes - 1) * MINUTE_MS
    inside = [e for e in events if first <= e["ts_ms"] <= now_ms]
    answered = [e["wait_ms"] for e in inside if e["type"] == "call.answered"]
    abandoned = [e for e in inside if e["type"] == "call.abandoned" and e["wait_ms"] >= 5000]
    offered = len(answered) + len(abandoned)
    within = sum(1 for w in answered if w <= 20_000)
    return {
        "offered": offered, "answered": len(answered), "abandoned": len(abandoned),
        "entered": sum(1 for e in inside if e["type"] == "call.queued"),
        "service_level": within / offered if offered else None,
        "asa_s": sum(answered) / len(answered) / 1000 if answered else None,
        "wait_p90_s": (float(np.quantile(answered, 0.9, method="lower")) / 1000
                       if answered else None),
    }


def test_rolling_windows_count_the_last_15_and_60_minutes_of_events():
    events = a_busy_hour(np.random.default_rng(3))
    engine = PartitionEngine(0, ENGINE, QUEUES)
    for batch in batches_of(events, 97):
        engine.apply(batch)
    (record,) = engine.realtime(emitted_at_ms=123)
    assert orjson.loads(orjson.dumps(record)) == record  # plain JSON types only
    now_ms = max(e["ts_ms"] for e in events)
    assert record["as_of_ms"] == now_ms and record["emitted_at_ms"] == 123
    for minutes, prefix in ((15, "w15m"), (60, "w60m")):
        expected = expected_window(events, now_ms, minutes)
        for name in ("offered", "answered", "abandoned", "entered"):
            assert record[f"{prefix}_{name}"] == expected[name], (prefix, name)
        assert record[f"{prefix}_service_level"] == pytest.approx(expected["service_level"])
        assert record[f"{prefix}_asa_s"] == pytest.approx(expected["asa_s"])
        assert record[f"{prefix}_wait_p90_s"] == pytest.approx(expected["wait_p90_s"], rel=0.01)


def test_calls_waiting_now_and_the_oldest_wait():
    events = [call_event("call.queued", 0, "c1"), call_event("call.queued", 30, "c2"),
              call_event("call.queued", 40, "c3"), outcome("call.answered", "c2", 50, 20),
              call_event("call.queued", 100, "c4")]
    engine = PartitionEngine(0, ENGINE, QUEUES)
    for batch in batches_of(events, None):
        engine.apply(batch)
    (record,) = engine.realtime(emitted_at_ms=0)
    assert record["calls_waiting"] == 3  # c1, c3, c4
    assert record["oldest_wait_s"] == pytest.approx(100.0)  # c1, at the clock of c4's event


def test_only_changed_or_waiting_queues_are_sent_again():
    events = (answered_call("c1", 0, 3) + answered_call("c2", 1, 3, queue="billing")
              + [call_event("call.queued", 5, "c3", queue="sales")])
    engine = PartitionEngine(0, ENGINE, QUEUES)
    engine.apply(next(batches_of(events, None)))
    assert sorted(r["queue"] for r in engine.realtime(0)) == ["billing", "sales", "support"]
    # Nothing changed: only the queue with a call waiting (its wait grows) is sent.
    assert [r["queue"] for r in engine.realtime(0)] == ["sales"]


def fan_out(source: PartitionEngine, events: list[dict[str, Any]], targets: PartitionEngine,
            first_offset: int = 0) -> None:
    """Apply agent events on ``source`` and ship its updates to ``targets`` through their
    wire form, as the worker does."""
    for batch in batches_of(events, None, first_offset):
        step = source.apply(batch)
        for _, updates in updates_by_partition(step.agent_updates, 1).items():
            targets.apply_agent_updates(decode_updates(encode_updates(updates)))


def agents_by_queue(engine: PartitionEngine) -> dict[str, dict[str, int]]:
    return {record["queue"]: record["agents"] for record in engine.realtime(0)}


def test_agent_states_reach_every_queue_the_agent_serves():
    agents = PartitionEngine(0, ENGINE, QUEUES)
    queues = PartitionEngine(0, ENGINE, QUEUES)
    fan_out(agents, [agent(0, "a1", "available", ["support", "billing"]),
                     agent(1, "a2", "away", ["support"]),
                     agent(2, "a1", "on_call", None)], queues)  # no list: the same queues
    assert agents_by_queue(queues) == {
        "support": {"available": 0, "on_call": 1, "wrapup": 0, "away": 1},
        "billing": {"available": 0, "on_call": 1, "wrapup": 0, "away": 0}}
    # a1 drops billing, then a2 logs out; an older event arriving late changes nothing.
    fan_out(agents, [agent(3, "a1", "available", ["support"]),
                     agent(4, "a2", "logged_out", None),
                     agent(3.5, "a2", "available", ["support"])], queues, first_offset=10)
    assert agents_by_queue(queues) == {
        "support": {"available": 1, "on_call": 0, "wrapup": 0, "away": 0},
        "billing": {"available": 0, "on_call": 0, "wrapup": 0, "away": 0}}
    assert agents.counts["agent_events_stale"] == 1


def test_realtime_state_survives_a_restart_from_the_changelog_shards():
    events = a_busy_hour(np.random.default_rng(5))[:500] + [call_event("call.queued", 4000, "w")]
    before = PartitionEngine(0, ENGINE, QUEUES)
    fan_out(before, [agent(0, "a1", "available", ["support"])], before)
    for batch in batches_of(events, 101, first_offset=100):
        before.apply(batch)
    after = PartitionEngine(0, ENGINE, QUEUES)
    for _, value in before.all_shard_values():
        after.load_shard(value)
    assert after.realtime(0) == before.realtime(0)


def test_replay_fans_agent_updates_out_across_partitions():
    lines = [orjson.dumps(e) for e in
             [agent(0, "a1", "available", ["support", "billing", "sales"])]
             + answered_call("c1", 1, 2) + answered_call("c2", 1, 2, queue="billing")]
    settings = Settings.from_mapping({"topics": {"partitions": 4}}, env={})
    result = replay_lines(lines, settings, now_ms=T0 + 60_000)
    assert result.counts["agent_updates"] == 3
    assert result.counts["agent_events"] == 1
    assert len(result.records) == 2  # agents never change interval records


def test_an_outcome_before_its_queued_event_leaves_no_phantom_waiting_call():
    # Disorder within the allowed lateness: the answer arrives before the call.queued.
    events = [outcome("call.answered", "c1", 12, 12), call_event("call.queued", 0, "c1"),
              call_event("call.queued", 20, "c2")]
    engine = PartitionEngine(0, ENGINE, QUEUES)
    for batch in batches_of(events, 1):
        engine.apply(batch)
    (record,) = engine.realtime(emitted_at_ms=0)
    assert record["calls_waiting"] == 1  # c2 only
    # A later queued of the same call (a transfer back into the queue) waits again.
    engine.apply(next(batches_of([call_event("call.queued", 30, "c1", event_id="c1-again")],
                                 None, first_offset=10)))
    (record,) = engine.realtime(emitted_at_ms=0)
    assert record["calls_waiting"] == 2
