"""The discrete-event model: reproducible, ordered, every event valid under contract v1,
lifecycles complete, agents and transfers as the scenario says."""

from __future__ import annotations

from collections import Counter, defaultdict

import orjson
import pytest

from streams.contract import EVENT_TYPES, Decoder, event_key
from streams.simulate import Simulation, default_scenario, parse_scenario, stationary_scenario

START_MS = 1_740_960_000_000  # 2025-03-03T00:00:00Z, a Monday
DAY_MS = 86_400_000
NOW_MS = START_MS + 2 * DAY_MS


def events_of(scenario, seed=5, duration_ms=DAY_MS, chunk_events=8192):
    simulation = Simulation(scenario, start_ms=START_MS, duration_ms=duration_ms, seed=seed,
                            chunk_events=chunk_events)
    return [e for chunk in simulation.run() for e in chunk]


@pytest.fixture(scope="module")
def day():
    return events_of(default_scenario())


def test_same_seed_same_events_other_seed_other_events():
    scenario = default_scenario()
    first = events_of(scenario, seed=9, duration_ms=6 * 3_600_000 + 7 * 3_600_000)
    again = events_of(scenario, seed=9, duration_ms=13 * 3_600_000, chunk_events=100)
    other = events_of(scenario, seed=10, duration_ms=13 * 3_600_000)
    assert orjson.dumps(first) == orjson.dumps(again)
    assert orjson.dumps(first) != orjson.dumps(other)


def test_events_are_in_event_time_order(day):
    stamps = [e["ts_ms"] for e in day]
    assert stamps == sorted(stamps)
    assert START_MS <= stamps[0] and stamps[-1] < START_MS + DAY_MS + 3_600_000


def test_every_contract_type_is_emitted_and_accepted_with_its_key(day):
    decoder = Decoder(max_message_bytes=1 << 20, max_future_skew_ms=300_000,
                      max_age_ms=3660 * DAY_MS)
    assert set(Counter(e["type"] for e in day)) == set(EVENT_TYPES)
    for event in day:
        key = event_key(event).encode()
        decoded = decoder.decode(orjson.dumps(event), key, NOW_MS)
        assert type(decoded) is dict, (event, decoded)
    assert {e["reason"] for e in day if e["type"] == "call.dequeued"} >= {"timeout"}
    assert {e["kind"] for e in day if e["type"] == "call.transferred"} == {"queue", "blind"}


def test_event_ids_unique_and_call_lifecycles_complete(day):
    assert len({e["event_id"] for e in day}) == len(day)
    assert all(e["event_id"].startswith(e["tenant"] + "-") for e in day)
    legs = defaultdict(list)  # (tenant, call, queue) -> event types in order
    for e in day:
        if e["type"].startswith("call."):
            legs[e["tenant"], e["call_id"], e["queue"]].append(e["type"])
    for leg, kinds in legs.items():
        assert kinds[0] == "call.queued", leg
        outcome = kinds[1]
        if outcome == "call.answered":
            rest = [k for k in kinds[2:] if k != "call.transferred"]
            assert rest == ["call.ended", "call.wrapup_ended"], (leg, kinds)
        else:
            assert kinds[1:] == [outcome] and outcome in ("call.abandoned", "call.dequeued"), leg


def test_transfer_to_a_queue_requeues_the_same_call(day):
    transfers = [e for e in day if e["type"] == "call.transferred" and e["kind"] == "queue"]
    assert transfers
    queued = {(e["tenant"], e["call_id"], e["queue"]): e for e in day if e["type"] == "call.queued"}
    for t in transfers:
        again = queued[t["tenant"], t["call_id"], t["target"]]
        assert again["ts_ms"] == t["ts_ms"]


def test_waits_match_event_times_and_callers_repeat(day):
    queued_at = {(e["tenant"], e["call_id"], e["queue"]): e["ts_ms"] for e in day
                 if e["type"] == "call.queued"}
    for e in day:
        if e["type"] in ("call.answered", "call.abandoned", "call.dequeued"):
            assert e["wait_ms"] == e["ts_ms"] - queued_at[e["tenant"], e["call_id"], e["queue"]]
    callers = Counter(e["caller"] for e in day if e["type"] == "call.queued")
    assert all(c.startswith("h:") for c in callers)
    repeats = sum(n - 1 for n in callers.values())
    assert 0.05 < repeats / sum(callers.values()) < 0.30


def test_agents_follow_shifts_breaks_and_calls(day):
    states = defaultdict(list)
    skills = {}
    for e in day:
        if e["type"] == "agent.state":
            states[e["tenant"], e["agent_id"]].append((e["ts_ms"], e["state"], e.get("reason")))
            skills.setdefault((e["tenant"], e["agent_id"]), e["queues"])
            assert e["queues"] == skills[e["tenant"], e["agent_id"]]
    assert skills["acme", "a-1035"] == ["billing", "support"]
    for agent, history in states.items():
        assert history[0][1] == "available" and history[-1][1] == "logged_out", agent
    # a-1001 works 07:00-15:30 with a break at 08:15 and lunch at 12:30 (first wave).
    history = states["acme", "a-1001"]
    assert history[0][0] == START_MS + 7 * 3_600_000
    assert [r for _, s, r in history if s == "away"] == ["break", "lunch"]
    assert START_MS + 15.5 * 3_600_000 <= history[-1][0] < START_MS + 16.5 * 3_600_000
    by_agent_call = defaultdict(list)
    for e in day:
        if e["type"] == "call.answered":
            by_agent_call[e["tenant"], e["agent_id"]].append(e["ts_ms"])
    on_call = [t for t, s, _ in history if s == "on_call"]
    assert on_call == by_agent_call["acme", "a-1001"]


def test_stationary_mode_has_talk_only_and_no_abandons_without_patience():
    events = events_of(stationary_scenario(360, 60, 8), duration_ms=3_600_000)
    kinds = Counter(e["type"] for e in events)
    assert kinds["call.abandoned"] == kinds["call.dequeued"] == kinds["call.transferred"] == 0
    assert kinds["call.queued"] == kinds["call.answered"] == kinds["call.wrapup_ended"]
    assert 300 < kinds["call.queued"] < 420  # Poisson(360): well within 4 standard deviations
    ended = [e for e in events if e["type"] == "call.ended"]
    assert all(e["hold_ms"] == 0 for e in ended)
    assert {e["acw_ms"] for e in events if e["type"] == "call.wrapup_ended"} == {0}
    assert {e["state"] for e in events if e["type"] == "agent.state"} == {
        "available", "on_call", "logged_out"}
    assert 50_000 < sum(e["talk_ms"] for e in ended) / len(ended) < 70_000


def test_queue_without_agents_dequeues_as_empty():
    scenario = parse_scenario("""
[[tenant]]
name = "night"
[[tenant.queue]]
name = "line"
arrivals_per_day = 2000
profile = "flat"
talk = { dist = "fixed", mean_s = 60 }
[[tenant.agents]]
count = 1
skills = ["line"]
shift = ["08:00", "09:00"]
""")
    events = events_of(scenario)
    dequeued = [e for e in events if e["type"] == "call.dequeued"]
    assert dequeued and {e["reason"] for e in dequeued} == {"empty"}
    answered = [e for e in events if e["type"] == "call.answered"]
    assert answered and all(
        START_MS + 8 * 3_600_000 <= e["ts_ms"] <= START_MS + 9 * 3_600_000 for e in answered)
