"""PartitionEngine against a plain-Python reference of the interval metric rules (docs/metrics.md).

The reference below reads the rules as written for downstream consumers and shares no code
with the engine or the kernels: it walks the events one at a time in arrival order, keeps
every applied event of an open interval in a list and computes the final record from that
list when the interval closes. Percentiles are checked against the exact rank value
(0-based rank ``floor((n - 1) * q)`` of the sorted answered waits) within 1 % relative error.
"""

from __future__ import annotations

import math
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.columns import build_batch
from streams.engine import PartitionEngine
from streams.errors import BatchFormatError
from streams.replay import replay_lines
from streams.settings import EngineSettings, QueueSettings, Settings

T0 = 1_741_078_800_000  # 2025-03-04T09:00:00Z, the start of a 15-minute interval
INTERVAL_MS = 900_000
TOPIC = "callcenter.events.v1"
ENGINE = EngineSettings()
QUEUES = QueueSettings()

QUANTILES = ((0.50, "wait_p50_s"), (0.90, "wait_p90_s"), (0.95, "wait_p95_s"),
             (0.99, "wait_p99_s"))
RECORD_FIELDS = {
    "tenant", "queue", "interval_start_ms", "interval_end_ms", "threshold_s", "sl_formula",
    "sl_target", "entered", "offered", "answered", "abandoned", "short_abandoned", "dequeued",
    "answered_within", "abandoned_within", "service_level", "sl_met", "asa_s", "abandon_rate",
    "handled", "aht_s", "max_wait_s", "transferred", "wait_unknown", "abandoned_wait_s",
    "dispositioned", *(name for _, name in QUANTILES),
}
OUTCOMES = ("call.answered", "call.abandoned", "call.dequeued")


# --- building events ---------------------------------------------------------------------------


def call_event(event_type: str, at_s: float, call_id: str, *, queue: str = "support",
               tenant: str = "acme", event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A contract-valid call event ``at_s`` seconds after :data:`T0`; ``None`` fields are left out."""
    ts_ms = T0 + round(at_s * 1000)
    event: dict[str, Any] = {
        "event_id": event_id or f"{tenant}-{queue}-{call_id}-{event_type}-{ts_ms}",
        "type": event_type, "ts_ms": ts_ms, "tenant": tenant, "queue": queue, "call_id": call_id,
    }
    if event_type in ("call.answered", "call.ended", "call.wrapup_ended"):
        event["agent_id"] = "a-1017"
    if event_type == "call.dequeued":
        event["reason"] = "timeout"
    if event_type == "call.ended":
        event["talk_ms"] = 0
    if event_type == "call.wrapup_ended":
        event["acw_ms"] = 0
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def agent_event(at_s: float, agent_id: str = "a-1017", tenant: str = "acme") -> dict[str, Any]:
    ts_ms = T0 + round(at_s * 1000)
    return {"event_id": f"{tenant}-agent-{agent_id}-{ts_ms}", "type": "agent.state",
            "ts_ms": ts_ms, "tenant": tenant, "agent_id": agent_id, "state": "available",
            "queues": ["support"]}


def answered_call(call_id: str, queued_s: float, wait_s: float | None, *,
                  queue: str = "support", tenant: str = "acme") -> list[dict[str, Any]]:
    """``call.queued`` then ``call.answered`` ``wait_s`` later, the wait carried in the event."""
    return [
        call_event("call.queued", queued_s, call_id, queue=queue, tenant=tenant),
        call_event("call.answered", queued_s + (wait_s or 0), call_id, queue=queue, tenant=tenant,
                   wait_ms=None if wait_s is None else round(wait_s * 1000)),
    ]


def outcome(event_type: str, call_id: str, at_s: float, wait_s: float | None, *,
            queue: str = "support", tenant: str = "acme") -> dict[str, Any]:
    return call_event(event_type, at_s, call_id, queue=queue, tenant=tenant,
                      wait_ms=None if wait_s is None else round(wait_s * 1000))


# --- the reference -----------------------------------------------------------------------------


@dataclass
class _RefQueue:
    max_ts_ms: int | None = None
    applied_ids: dict[str, int] = field(default_factory=dict)  # event id -> its interval start
    queued_at_ms: dict[str, int] = field(default_factory=dict)  # call id -> call.queued time
    open_intervals: dict[int, list[tuple[dict[str, Any], int | None]]] = field(default_factory=dict)


@dataclass
class Expected:
    records: list[dict[str, Any]]
    counts: Tally[str]


def reference(events: Iterable[dict[str, Any]], engine: EngineSettings = ENGINE,
              queues: QueueSettings = QUEUES) -> Expected:
    """Final interval records of ``events`` (arrival order), then everything still open closed.

    An interval of a queue closes when the queue's watermark (its largest event time minus the
    allowed lateness) reaches the interval's end, or when the partition clock (the largest
    call-event time of the whole partition) reaches end + allowed lateness + idle close.
    """
    interval_ms = engine.interval_s * 1000
    lateness_ms = engine.allowed_lateness_s * 1000
    idle_ms = lateness_ms + engine.idle_close_s * 1000
    state: dict[tuple[str, str], _RefQueue] = {}
    records: list[dict[str, Any]] = []
    counts: Tally[str] = Tally()
    partition_clock_ms = -math.inf

    def closed_through(q: _RefQueue) -> float:
        watermark = -math.inf if q.max_ts_ms is None else q.max_ts_ms - lateness_ms
        return max(watermark, partition_clock_ms - idle_ms)

    def close(key: tuple[str, str], q: _RefQueue, up_to: float) -> None:
        for start in sorted(q.open_intervals):
            if start + interval_ms <= up_to:
                records.append(reference_record(key, start, q.open_intervals.pop(start),
                                                interval_ms, queues))

    for event in events:
        if event["type"] == "agent.state":
            counts["agent_events"] += 1
            continue
        key = (event["tenant"], event["queue"])
        q = state.setdefault(key, _RefQueue())
        event_id, ts_ms = event["event_id"], event["ts_ms"]
        start = ts_ms - ts_ms % interval_ms
        repeated_start = q.applied_ids.get(event_id)
        if repeated_start is not None and repeated_start + interval_ms > closed_through(q):
            counts["duplicates"] += 1
            continue
        q.max_ts_ms = ts_ms if q.max_ts_ms is None else max(q.max_ts_ms, ts_ms)
        partition_clock_ms = max(partition_clock_ms, ts_ms)
        if start + interval_ms <= closed_through(q):
            counts["late"] += 1
            continue
        q.applied_ids[event_id] = start
        wait_ms = event.get("wait_ms")
        if event["type"] == "call.queued":
            q.queued_at_ms[event["call_id"]] = ts_ms
        elif event["type"] in OUTCOMES:
            queued_at = q.queued_at_ms.pop(event["call_id"], None)
            if wait_ms is None and queued_at is not None:
                wait_ms = max(0, ts_ms - queued_at)
        q.open_intervals.setdefault(start, []).append((event, wait_ms))
        counts["applied"] += 1
        for other_key, other in state.items():
            close(other_key, other, closed_through(other))
    for key, q in state.items():
        close(key, q, math.inf)
    records.sort(key=lambda r: (r["tenant"], r["queue"], r["interval_start_ms"]))
    return Expected(records, counts)


def reference_record(key: tuple[str, str], start_ms: int,
                     applied: Sequence[tuple[dict[str, Any], int | None]], interval_ms: int,
                     queues: QueueSettings) -> dict[str, Any]:
    """One interval's record from its applied events and their (possibly computed) waits."""
    tenant, queue = key
    policy = queues.policy(tenant, queue)
    threshold_ms = policy.threshold_s * 1000
    by_type: dict[str, list[tuple[dict[str, Any], int | None]]] = {}
    for event, wait_ms in applied:
        by_type.setdefault(event["type"], []).append((event, wait_ms))

    def waits(event_type: str) -> list[int | None]:
        return [w for _, w in by_type.get(event_type, [])]

    answered_waits = waits("call.answered")
    dequeued_waits = waits("call.dequeued")
    short_ms = policy.short_abandon_s * 1000
    short = [w for w in waits("call.abandoned") if w is not None and w < short_ms]
    abandoned_waits = [w for w in waits("call.abandoned") if w is None or w >= short_ms]
    known_answered = sorted(w for w in answered_waits if w is not None)
    answered, abandoned, dequeued = len(answered_waits), len(abandoned_waits), len(dequeued_waits)
    offered = answered + abandoned + dequeued
    answered_within = sum(1 for w in known_answered if w <= threshold_ms)
    abandoned_within = sum(1 for w in abandoned_waits if w is not None and w <= threshold_ms)
    numerator, denominator = {
        "offered": (answered_within, offered),
        "ignore_abandons": (answered_within, offered - abandoned),
        "abandons_within_good": (answered_within + abandoned_within, offered),
        "answered": (answered_within, answered),
    }[policy.sl_formula]
    service_level = numerator / denominator if denominator else None
    ended = [e for e, _ in by_type.get("call.ended", [])]
    handle_ms = (sum(e["talk_ms"] + e.get("hold_ms", 0) for e in ended)
                 + sum(e["acw_ms"] for e, _ in by_type.get("call.wrapup_ended", [])))
    all_known = [w for w in answered_waits + abandoned_waits + dequeued_waits if w is not None]
    record = {
        "tenant": tenant, "queue": queue,
        "interval_start_ms": start_ms, "interval_end_ms": start_ms + interval_ms,
        "threshold_s": policy.threshold_s, "sl_formula": policy.sl_formula,
        "sl_target": policy.sl_target,
        "entered": len(by_type.get("call.queued", [])),
        "offered": offered, "answered": answered, "abandoned": abandoned,
        "short_abandoned": len(short), "dequeued": dequeued,
        "answered_within": answered_within, "abandoned_within": abandoned_within,
        "service_level": service_level,
        "sl_met": None if service_level is None else service_level >= policy.sl_target,
        "asa_s": sum(known_answered) / len(known_answered) / 1000 if known_answered else None,
        "abandon_rate": abandoned / offered if offered else None,
        "handled": len(ended),
        "aht_s": handle_ms / len(ended) / 1000 if ended else None,
        "max_wait_s": max(all_known) / 1000 if all_known else None,
        "transferred": len(by_type.get("call.transferred", [])),
        "wait_unknown": sum(1 for w in answered_waits + abandoned_waits + dequeued_waits
                            if w is None),
        "abandoned_wait_s": sum(w for w in abandoned_waits if w is not None) / 1000,
        "dispositioned": sum(1 for e, _ in by_type.get("call.wrapup_ended", [])
                             if e.get("disposition") is not None),
    }
    for q, name in QUANTILES:
        record[name] = (known_answered[math.floor((len(known_answered) - 1) * q)] / 1000
                        if known_answered else None)
    return record


def assert_records_match(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Field by field: exact counts, floats to rounding, percentiles within 1 % relative."""
    def where(r: dict[str, Any]) -> tuple[str, str, int]:
        return r["tenant"], r["queue"], r["interval_start_ms"]

    assert [where(r) for r in got] == [where(r) for r in expected]
    percentiles = {name for _, name in QUANTILES}
    for g, e in zip(got, expected):
        assert set(g) == RECORD_FIELDS, where(g)
        for name in sorted(RECORD_FIELDS):
            gv, ev = g[name], e[name]
            context = f"{name} of {where(g)}: engine {gv!r}, reference {ev!r}"
            if ev is None or gv is None or isinstance(ev, (bool, str)):
                assert gv == ev and type(gv) is type(ev), context
            elif name in percentiles:
                assert abs(gv - ev) <= 0.01 * ev, context
            elif isinstance(ev, float):
                assert gv == pytest.approx(ev, rel=1e-12), context
            else:
                assert gv == ev and type(gv) is int, context


# --- running the engine ------------------------------------------------------------------------


@dataclass
class Run:
    records: list[dict[str, Any]]
    late: list[Any]
    counts: Tally[str]


def batches_of(events: Sequence[dict[str, Any]], size: int | None, first_offset: int = 0):
    """Column batches of ``size`` events (all in one when ``None``), offsets from ``first_offset``."""
    rows = list(enumerate(events, start=first_offset))
    size = size or max(1, len(rows))
    for i in range(0, len(rows), size):
        chunk = rows[i:i + size]
        yield build_batch(TOPIC, 0, chunk, chunk[0][0], chunk[-1][0])


def run(events: Sequence[dict[str, Any]], batch_size: int | None = None, *,
        engine: EngineSettings = ENGINE, queues: QueueSettings = QUEUES,
        initial_panes: int = 64) -> Run:
    """Apply ``events`` in batches of ``batch_size``, then close every open interval."""
    partition = PartitionEngine(0, engine, queues, initial_panes)
    out = Run([], [], Tally())
    for batch in batches_of(events, batch_size):
        step = partition.apply(batch)
        out.records.extend(step.records)
        out.late.extend(step.late)
    out.records.extend(partition.close_all().records)
    out.records.sort(key=lambda r: (r["tenant"], r["queue"], r["interval_start_ms"]))
    out.counts = partition.counts
    return out


def restored(before: PartitionEngine, applied: Sequence[Any], after: PartitionEngine
             ) -> PartitionEngine:
    """``after`` rebuilt from ``before``'s changelog values as the worker does: every shard,
    the marker, then the event ids read back from the internal topic's batches (``applied[k]``
    at offset k) between the marker's two offsets."""
    for _, value in before.all_shard_values():
        after.load_shard(value)
    after.load_meta(before.meta_value())
    for offset in range(max(after.restore_ids_from, 0), after.batch_offset + 1):
        after.remember_ids(offset, applied[offset])
    return after


def check(events: Sequence[dict[str, Any]], batch_size: int | None = None, *,
          engine: EngineSettings = ENGINE, queues: QueueSettings = QUEUES) -> Run:
    """Run the engine, compare with the reference, return the engine's run."""
    got = run(events, batch_size, engine=engine, queues=queues)
    expected = reference(events, engine, queues)
    assert_records_match(got.records, expected.records)
    for name in ("applied", "agent_events"):
        assert got.counts[name] == expected.counts[name], name
    return got


def assert_fields(record: dict[str, Any], expected: dict[str, Any]) -> None:
    """The named fields of ``record`` equal ``expected`` (the others are not looked at)."""
    assert {name: record[name] for name in expected} == expected


def only(records: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(records) == 1, records
    return records[0]


# --- every event kind --------------------------------------------------------------------------


def test_every_event_kind_counts_by_its_rule():
    events = [
        *answered_call("c1", 0, 12),
        call_event("call.ended", 200, "c1", talk_ms=180_000, hold_ms=20_000),
        call_event("call.wrapup_ended", 230, "c1", acw_ms=30_000),
        call_event("call.transferred", 150, "c1", kind="queue", target="billing"),
        *answered_call("c2", 10, 35),
        call_event("call.ended", 300, "c2", talk_ms=100_000),
        call_event("call.queued", 20, "c3"),
        outcome("call.abandoned", "c3", 38, 18),
        call_event("call.queued", 30, "c4"),
        outcome("call.abandoned", "c4", 90, 60),
        call_event("call.queued", 40, "c5"),
        outcome("call.dequeued", "c5", 340, 300),
        agent_event(50),
    ]
    got = check(events)
    record = only(got.records)
    assert_fields(record, {
        "tenant": "acme", "queue": "support",
        "interval_start_ms": T0, "interval_end_ms": T0 + INTERVAL_MS,
        "threshold_s": 20.0, "sl_formula": "offered", "sl_target": 0.8,
        "entered": 5, "answered": 2, "abandoned": 2, "short_abandoned": 0, "dequeued": 1,
        "offered": 5, "answered_within": 1, "abandoned_within": 1,
        "service_level": 1 / 5, "sl_met": False, "asa_s": 23.5, "abandon_rate": 2 / 5,
        "handled": 2, "aht_s": (180 + 20 + 30 + 100) / 2, "max_wait_s": 300.0,
        "transferred": 1, "wait_unknown": 0,
    })
    assert record["wait_p50_s"] == pytest.approx(12, rel=0.01)
    assert record["wait_p99_s"] == pytest.approx(12, rel=0.01)  # rank floor(1 * 0.99) = 0
    assert got.counts["agent_events"] == 1
    assert got.counts["applied"] == len(events) - 1


def test_percentiles_follow_the_rank_rule_within_one_percent():
    waits_s = [0, 0.5, 3, 7.25, 19.999, 20, 61, 125.5, 600, 3599] * 7
    events = [outcome("call.answered", f"c{i}", i, w) for i, w in enumerate(waits_s)]
    record = only(check(events).records)
    exact = sorted(waits_s)
    for q, name in QUANTILES:
        assert exact[math.floor((len(exact) - 1) * q)] == pytest.approx(
            np.quantile(exact, q, method="lower"))
    assert record["wait_p50_s"] == pytest.approx(19.999, rel=0.01)
    assert record["wait_p99_s"] == pytest.approx(3599, rel=0.01)
    assert record["max_wait_s"] == 3599.0  # exact, not from the sketch
    assert record["answered_within"] == 6 * 7  # thresholds compare exact milliseconds


def test_threshold_is_inclusive_and_short_abandon_exclusive():
    events = [
        *answered_call("c1", 0, 20),
        *answered_call("c2", 1, 20.001),
        outcome("call.abandoned", "c3", 10, 4.999),
        outcome("call.abandoned", "c4", 11, 5),
        outcome("call.abandoned", "c5", 30, 20),
        outcome("call.abandoned", "c6", 31, 20.001),
    ]
    record = only(check(events).records)
    assert (record["answered_within"], record["short_abandoned"], record["abandoned"],
            record["abandoned_within"]) == (1, 1, 3, 2)


# --- duplicates --------------------------------------------------------------------------------


def test_duplicates_are_dropped_within_a_batch_and_across_batches():
    queued, answered = answered_call("c1", 0, 8)
    ended = call_event("call.ended", 100, "c1", talk_ms=60_000)
    first = [queued, answered, answered, ended]
    second = [dict(answered), queued, ended, *answered_call("c2", 200, 30)]
    partition = PartitionEngine(0, ENGINE, QUEUES)
    steps = [partition.apply(batch) for batch in (*batches_of(first, None),
                                                  *batches_of(second, None, first_offset=4))]
    assert [s.counts["duplicates"] for s in steps] == [1, 3]
    assert partition.counts["applied"] == 5
    record = only(partition.close_all().records)
    assert (record["entered"], record["answered"], record["handled"], record["wait_p50_s"]) == (
        2, 2, 1, pytest.approx(8, rel=0.01))
    assert_records_match([record], reference(first + second).records)


def test_a_repeated_event_id_counts_once_whatever_its_other_fields():
    answered = outcome("call.answered", "c1", 30, 30)
    retried = dict(answered, wait_ms=1_000)  # same id: the same event, whatever it says
    record = only(check([answered, retried]).records)
    assert (record["answered"], record["answered_within"], record["max_wait_s"]) == (1, 0, 30.0)


# --- missing waits -----------------------------------------------------------------------------


def test_a_missing_wait_is_computed_from_the_call_queued_time():
    events = [
        *answered_call("c1", 10, None),                       # queued 10 s, answered 10 s: wait 0
        call_event("call.queued", 20, "c2"),
        call_event("call.answered", 52.5, "c2"),              # wait 32.5 s
        call_event("call.queued", 40, "c3"),
        call_event("call.abandoned", 43, "c3"),               # wait 3 s: a short abandon
        call_event("call.queued", 50, "c4"),
        call_event("call.dequeued", 170, "c4"),               # wait 120 s
        call_event("call.queued", 60, "c5"),
        outcome("call.answered", "c5", 70, 4),                # the given wait wins over 10 s
    ]
    record = only(check(events).records)
    assert_fields(record, {
        "answered": 3, "answered_within": 2, "short_abandoned": 1, "abandoned": 0,
        "dequeued": 1, "max_wait_s": 120.0, "wait_unknown": 0, "asa_s": (0 + 32.5 + 4) / 3,
    })


def test_a_missing_wait_without_a_queued_event_is_unknown():
    events = [
        call_event("call.answered", 10, "c1"),
        call_event("call.abandoned", 11, "c2"),               # unknown wait: not a short abandon
        call_event("call.dequeued", 12, "c3"),
        call_event("call.answered", 30, "c4"),                # its queued arrives after it
        call_event("call.queued", 5, "c4"),
    ]
    record = only(check(events).records)
    assert_fields(record, {
        "answered": 2, "abandoned": 1, "short_abandoned": 0, "dequeued": 1, "offered": 4,
        "wait_unknown": 4, "answered_within": 0, "abandoned_within": 0, "service_level": 0.0,
        "asa_s": None, "max_wait_s": None, "wait_p50_s": None, "wait_p99_s": None,
    })


def test_a_queued_event_in_an_earlier_interval_still_gives_the_wait():
    events = [call_event("call.queued", 890, "c1"), call_event("call.answered", 905, "c1")]
    records = check(events).records
    assert [(r["entered"], r["answered"], r["answered_within"], r["max_wait_s"])
            for r in records] == [(1, 0, 0, None), (0, 1, 1, 15.0)]


# --- short abandons ----------------------------------------------------------------------------


def test_short_abandons_are_excluded_from_every_other_count():
    events = [
        *answered_call("c1", 0, 1),
        call_event("call.queued", 10, "c2"),
        outcome("call.abandoned", "c2", 14.999, 4.999),
        outcome("call.abandoned", "c3", 20, 0),
    ]
    record = only(check(events).records)
    assert_fields(record, {
        "entered": 2, "short_abandoned": 2, "abandoned": 0, "abandoned_within": 0,
        "offered": 1, "service_level": 1.0, "abandon_rate": 0.0, "max_wait_s": 1.0,
        "wait_unknown": 0, "asa_s": 1.0,
    })
    assert record["wait_p99_s"] == pytest.approx(1.0, rel=0.01)


def test_an_interval_of_short_abandons_only_has_a_record_and_no_service_level():
    record = only(check([outcome("call.abandoned", "c1", 5, 2)]).records)
    assert (record["short_abandoned"], record["offered"], record["service_level"],
            record["sl_met"], record["abandon_rate"], record["max_wait_s"]) == (
        1, 0, None, None, None, None)


# --- service-level formulas and per-queue rules ------------------------------------------------


def sl_mix(queue: str = "support", tenant: str = "acme") -> list[dict[str, Any]]:
    """3 answered (10, 15, 30 s), 2 abandoned (8, 40 s), 1 dequeued (25 s), 1 short abandon."""
    where = {"queue": queue, "tenant": tenant}
    return [
        *answered_call("c1", 0, 10, **where), *answered_call("c2", 1, 15, **where),
        *answered_call("c3", 2, 30, **where),
        outcome("call.abandoned", "c4", 50, 8, **where),
        outcome("call.abandoned", "c5", 51, 40, **where),
        outcome("call.dequeued", "c6", 52, 25, **where),
        outcome("call.abandoned", "c7", 53, 2, **where),
    ]


@pytest.mark.parametrize(("formula", "service_level", "met"), [
    ("offered", 2 / 6, False),
    ("ignore_abandons", 2 / 4, True),
    ("abandons_within_good", 3 / 6, True),
    ("answered", 2 / 3, True),
])
def test_each_sl_formula(formula, service_level, met):
    queues = QueueSettings.from_table({"defaults": {"sl_formula": formula, "sl_target": 0.5}})
    record = only(check(sl_mix(), queues=queues).records)
    assert (record["sl_formula"], record["sl_target"]) == (formula, 0.5)
    assert (record["offered"], record["answered_within"], record["abandoned_within"]) == (6, 2, 1)
    assert record["service_level"] == pytest.approx(service_level)
    assert record["sl_met"] is met


def test_ignore_abandons_without_anything_but_abandons_has_no_service_level():
    queues = QueueSettings.from_table({"defaults": {"sl_formula": "ignore_abandons"}})
    record = only(check([outcome("call.abandoned", "c1", 30, 30)], queues=queues).records)
    assert (record["offered"], record["service_level"], record["sl_met"]) == (1, None, None)


def test_tenant_and_queue_overrides_shape_each_queue():
    queues = QueueSettings.from_table({
        "defaults": {"threshold_s": 30},
        "tenants": {"globex": {"sl_formula": "answered", "short_abandon_s": 10.0}},
        "overrides": {"globex/vip": {"threshold_s": 10.0, "sl_target": 0.9},
                      "acme/sales": {"sl_formula": "ignore_abandons"}},
    })
    events = [e for tenant, queue in (("acme", "support"), ("acme", "sales"),
                                      ("globex", "support"), ("globex", "vip"))
              for e in sl_mix(queue, tenant)]
    records = check(events, queues=queues).records
    summary = {(r["tenant"], r["queue"]): (
        r["threshold_s"], r["sl_formula"], r["sl_target"], r["answered_within"],
        r["abandoned_within"], r["short_abandoned"], r["abandoned"], r["service_level"])
        for r in records}
    assert summary == {
        ("acme", "sales"): (30.0, "ignore_abandons", 0.8, 3, 1, 1, 2, 3 / 4),
        ("acme", "support"): (30.0, "offered", 0.8, 3, 1, 1, 2, 3 / 6),
        ("globex", "support"): (30.0, "answered", 0.8, 3, 0, 2, 1, 3 / 3),
        ("globex", "vip"): (10.0, "answered", 0.9, 1, 0, 2, 1, 1 / 3),
    }


# --- intervals without events ------------------------------------------------------------------


def test_no_record_for_an_interval_without_events():
    events = [*answered_call("c1", 10, 5), *answered_call("c2", 2 * 900 + 10, 5)]
    records = check(events).records
    assert [r["interval_start_ms"] for r in records] == [T0, T0 + 2 * INTERVAL_MS]


def test_an_interval_with_only_handle_events_has_no_service_level():
    events = [call_event("call.ended", 100, "c1", talk_ms=90_000, hold_ms=10_000),
              call_event("call.wrapup_ended", 130, "c1", acw_ms=20_000),
              call_event("call.wrapup_ended", 140, "c0", acw_ms=10_000)]
    record = only(check(events).records)
    assert_fields(record, {
        "offered": 0, "handled": 1, "aht_s": 130.0, "service_level": None,
        "sl_met": None, "asa_s": None, "abandon_rate": None, "max_wait_s": None,
        "wait_p50_s": None,
    })


def test_acw_without_a_call_ended_in_the_interval_gives_no_aht():
    record = only(check([call_event("call.wrapup_ended", 10, "c1", acw_ms=20_000)]).records)
    assert (record["handled"], record["aht_s"]) == (0, None)


# --- lateness ----------------------------------------------------------------------------------


def test_disorder_within_the_allowed_lateness_is_applied_and_later_is_late():
    partition = PartitionEngine(0, ENGINE, QUEUES)
    events = [
        call_event("call.queued", 100, "c1"),
        call_event("call.queued", 1000, "c2"),               # watermark 880 s: interval 0 open
        outcome("call.answered", "c1", 850, 750),             # disorder within lateness
        call_event("call.queued", 1019.999, "c3"),           # watermark 899.999 s: still open
        call_event("call.queued", 1020, "c4"),               # watermark 900 s: interval 0 closes
        outcome("call.answered", "c5", 899, 5),               # late
    ]
    steps = [partition.apply(b) for b in batches_of(events, 1)]
    assert [len(s.records) for s in steps] == [0, 0, 0, 0, 1, 0]
    closed = steps[4].records[0]
    assert (closed["interval_start_ms"], closed["entered"], closed["answered"],
            closed["max_wait_s"]) == (T0, 1, 1, 750.0)
    (late,) = steps[5].late
    assert (late.source_partition, late.offset, late.interval_start_ms, late.closed_before_ms) == (
        0, 5, T0, T0 + INTERVAL_MS)
    assert late.event == events[5]
    assert partition.counts["late"] == 1 and partition.counts["applied"] == 5
    assert_records_match(sorted(steps[4].records + partition.close_all().records,
                                key=lambda r: r["interval_start_ms"]),
                         reference(events).records)


def test_late_events_are_returned_in_one_batch_too():
    events = [call_event("call.queued", 10, "c1"), call_event("call.queued", 1100, "c2"),
              call_event("call.queued", 20, "c3"), call_event("call.queued", 30, "c4")]
    got = check(events)
    assert [e.offset for e in got.late] == [2, 3]
    assert got.counts["late"] == 2
    assert [r["entered"] for r in got.records] == [1, 1]


def test_watermarks_are_per_queue():
    events = [call_event("call.queued", 10, "c1", queue="support"),
              call_event("call.queued", 1050, "c2", queue="sales"),  # its own watermark: 930 s
              call_event("call.queued", 20, "c3", queue="support")]
    got = check(events, 1)
    assert got.counts["late"] == 0
    assert [(r["queue"], r["entered"]) for r in got.records] == [("sales", 1), ("support", 2)]


def test_zero_lateness_closes_an_interval_at_the_first_event_after_it():
    engine = EngineSettings(allowed_lateness_s=0)
    events = [call_event("call.queued", 899.999, "c1"), call_event("call.queued", 900, "c2"),
              call_event("call.queued", 899, "c3")]
    got = check(events, 1, engine=engine)
    assert got.counts["late"] == 1


# --- idle queues -------------------------------------------------------------------------------


def test_an_idle_queue_closes_when_the_partition_clock_passes_end_plus_grace():
    # The partition clock (largest event time of the partition) closes the intervals of a
    # queue without events once it reaches end + allowed lateness + idle close (900 + 180 s).
    partition = PartitionEngine(0, ENGINE, QUEUES)
    events = [call_event("call.queued", 10, "c1", queue="support"),
              call_event("call.queued", 1079.999, "c2", queue="sales"),
              call_event("call.queued", 1080, "c3", queue="sales"),
              call_event("call.queued", 20, "c4", queue="support")]
    steps = [partition.apply(b) for b in batches_of(events, 1)]
    assert [[(r["queue"], r["interval_start_ms"]) for r in s.records] for s in steps] == [
        [], [], [("support", T0)], []]
    assert [e.offset for e in steps[3].late] == [3]
    expected = reference(events[:3]).records
    assert_records_match(steps[2].records, [r for r in expected if r["queue"] == "support"])
    assert reference(events).counts["late"] == 1


def test_the_wall_clock_closes_an_idle_partition_after_end_plus_lateness_plus_idle_close():
    partition = PartitionEngine(0, ENGINE, QUEUES)
    events = [*answered_call("c1", 890, 3), call_event("call.queued", 905, "c2")]
    assert partition.apply(next(batches_of(events, None))).records == []
    end = T0 + INTERVAL_MS
    grace = (ENGINE.allowed_lateness_s + ENGINE.idle_close_s) * 1000
    assert partition.close_idle(end + grace - 1).records == []
    step = partition.close_idle(end + grace + 1)
    assert [(r["interval_start_ms"], r["answered"]) for r in step.records] == [(T0, 1)]
    assert partition.close_idle(end + grace + 2).records == []  # exactly one final record
    late = partition.apply(next(batches_of([call_event("call.queued", 899, "c3")], None, 3)))
    assert [e.offset for e in late.late] == [3]
    # the next interval waits for its own end + lateness + idle close
    assert partition.close_idle(end + INTERVAL_MS + grace - 1).records == []
    (second,) = partition.close_idle(end + INTERVAL_MS + grace + 1).records
    assert (second["interval_start_ms"], second["entered"]) == (end, 1)
    assert partition.close_all().records == []


# --- redelivery, batch boundaries and recovery -------------------------------------------------


def a_busy_stream() -> list[dict[str, Any]]:
    """Two tenants, three queues, three intervals; duplicates, disorder and late events."""
    events: list[dict[str, Any]] = []
    for i in range(30):
        tenant, queue = [("acme", "support"), ("acme", "sales"), ("globex", "support")][i % 3]
        where = {"tenant": tenant, "queue": queue}
        t = 60 * i
        events.append(call_event("call.queued", t, f"c{i}", **where))
        kind = OUTCOMES[i % 3] if i % 5 else "call.abandoned"
        wait = [3, 12, 25, 60, 240][i % 5]
        events.append(call_event(kind, t + wait, f"c{i}", **where,
                                 wait_ms=None if i % 4 == 0 else wait * 1000))
        if kind == "call.answered":
            events.append(call_event("call.ended", t + wait + 100, f"c{i}", **where,
                                     talk_ms=90_000, hold_ms=5_000 * (i % 2)))
            events.append(call_event("call.wrapup_ended", t + wait + 130, f"c{i}", **where,
                                     acw_ms=30_000, disposition="sale" if i % 2 else None))
        if i % 7 == 0:
            events.append(dict(events[-2]))                 # a re-send
            events.append(agent_event(t + 1))
    events.sort(key=lambda e: e["ts_ms"])
    # some events arrive late (after their interval closed) and some out of order within lateness
    events.insert(60, dict(events.pop(20)))
    events.insert(40, dict(events.pop(45)))
    return events


def test_a_redelivered_batch_is_skipped():
    events = a_busy_stream()
    first, second = list(batches_of(events[:50], 25))
    partition = PartitionEngine(0, ENGINE, QUEUES)
    records = partition.apply(first).records + partition.apply(second).records
    again = partition.apply(second)
    # agent.state rows too: the agent registry keeps its own applied offsets.
    assert again.counts["redelivered"] == 25
    assert (again.records, again.late, again.counts["applied"]) == ([], [], 0)
    # a poll overlapping the last one: the old offsets are skipped, the new ones applied
    overlap = next(batches_of(events[40:], None, first_offset=40))
    step = partition.apply(overlap)
    assert step.counts["redelivered"] == sum(1 for e in events[40:50] if e["type"] != "agent.state")
    records += step.records + partition.close_all().records
    records.sort(key=lambda r: (r["tenant"], r["queue"], r["interval_start_ms"]))
    assert records == run(events).records


def test_results_do_not_depend_on_batch_boundaries():
    events = a_busy_stream()
    runs = [check(events, size) for size in (1, 7, None)]
    assert runs[0].counts["late"] > 0 and runs[0].counts["duplicates"] > 0
    assert runs[0].records == runs[1].records == runs[2].records
    assert len({r.counts["applied"] for r in runs}) == 1


def test_pane_rows_grow_when_the_first_ones_are_used():
    events = a_busy_stream()
    assert run(events, 7, initial_panes=1).records == run(events).records


@pytest.mark.parametrize("cut", [1, 37, 70])
def test_shard_round_trip_mid_stream_gives_the_same_records(cut):
    events = a_busy_stream()
    before = PartitionEngine(0, ENGINE, QUEUES)
    records = []
    applied = list(batches_of(events[:cut], 9))
    for offset, batch in enumerate(applied):
        records += before.apply(batch).records
        before.mark_batch(offset, batch)
    assert len(list(before.all_shard_values())) > 1 or cut == 1
    after = restored(before, applied, PartitionEngine(0, ENGINE, QUEUES, initial_panes=1))
    # the last batch before the cut comes again after the restart and must not count twice
    last = list(batches_of(events[:cut], 9))[-1]
    assert after.apply(last).counts["applied"] == 0
    for batch in batches_of(events[cut:], 9, first_offset=cut):
        records += after.apply(batch).records
    records += after.close_all().records
    records.sort(key=lambda r: (r["tenant"], r["queue"], r["interval_start_ms"]))
    assert records == run(events).records


def test_a_batch_of_another_partition_or_a_foreign_shard_is_refused():
    partition = PartitionEngine(0, ENGINE, QUEUES)
    batch = build_batch(TOPIC, 1, [(0, call_event("call.queued", 0, "c1"))], 0, 0)
    with pytest.raises(BatchFormatError, match="partition 1"):
        partition.apply(batch)
    with pytest.raises(BatchFormatError, match="bad magic"):
        partition.load_shard(batch.to_bytes())


def test_replay_of_json_lines_matches_the_reference():
    events = a_busy_stream()
    lines = [orjson.dumps(e) for e in events]
    result = replay_lines(lines, Settings(), now_ms=T0 + 86_400_000)
    assert result.dead_letters == []
    assert_records_match(result.records, reference(events).records)
    assert result.counts["lines"] == len(events)


def test_an_expired_open_call_gives_no_wait_whatever_the_batch_boundaries():
    # c1 was queued 100 s before the latest event of its queue when its answer (without
    # wait_ms) arrives: with a 60 s open_call_ttl_s it is forgotten, so the wait is unknown.
    engine = EngineSettings(open_call_ttl_s=60)
    events = [call_event("call.queued", 0, "c1"), call_event("call.queued", 100, "c2"),
              call_event("call.answered", 110, "c1")]
    for size in (1, 2, None):
        record = only(run(events, size, engine=engine).records)
        assert (size, record["wait_unknown"], record["max_wait_s"]) == (size, 1, None)


def test_a_wait_over_a_day_is_reported_within_one_percent():
    # The contract accepts waits up to 7 days (604 800 000 ms); the percentiles promise 1 %.
    events = [outcome("call.answered", "c1", 10, 2 * 86_400)]
    assert_records_match(run(events).records, reference(events).records)


# --- random streams ----------------------------------------------------------------------------

PROPERTY_ENGINE = EngineSettings(interval_s=60, allowed_lateness_s=15)
PROPERTY_QUEUES = QueueSettings.from_table({
    "defaults": {"threshold_s": 20.0},
    "tenants": {"globex": {"sl_formula": "abandons_within_good", "short_abandon_s": 8.0}},
    "overrides": {"acme/sales": {"sl_formula": "ignore_abandons", "threshold_s": 10.0},
                  "globex/sales": {"sl_formula": "answered", "sl_target": 0.5}},
})
WAITS_MS = st.one_of(st.sampled_from([0, 1, 4_999, 5_000, 7_999, 8_000, 10_000, 10_001,
                                      20_000, 20_001]),
                     st.integers(0, 300_000))


@st.composite
def call_streams(draw) -> list[dict[str, Any]]:
    """Calls over a few queues and a few 60-s intervals, with every kind, missing waits,
    re-sends, disorder within and beyond lateness, and agent events."""
    timed: list[tuple[int, dict[str, Any]]] = []  # (arrival time, event)
    for n in range(draw(st.integers(0, 25))):
        tenant = draw(st.sampled_from(["acme", "globex"]))
        queue = draw(st.sampled_from(["support", "sales"]))
        where = {"tenant": tenant, "queue": queue}
        queued_s = draw(st.integers(0, 240_000)) / 1000
        wait_ms = draw(WAITS_MS)
        call = f"c{n}"
        kinds = [("call.queued", queued_s, {})]
        kind = draw(st.sampled_from([*OUTCOMES, None]))
        at_s = queued_s + wait_ms / 1000
        if kind is not None:
            given_wait = draw(st.sampled_from([wait_ms, None]))
            kinds.append((kind, at_s, {"wait_ms": given_wait}))
        if kind == "call.answered":
            kinds.append(("call.ended", at_s + 60, {"talk_ms": draw(st.integers(0, 600_000)),
                                                    "hold_ms": draw(st.sampled_from([None, 15_000]))}))
            kinds.append(("call.wrapup_ended", at_s + 90, {"acw_ms": draw(st.integers(0, 90_000))}))
            if draw(st.booleans()):
                kinds.append(("call.transferred", at_s + 30, {"kind": "blind"}))
        if kinds and not draw(st.integers(0, 4)):
            kinds.pop(0)  # the queued event went missing
        for event_type, event_s, fields in kinds:
            event = call_event(event_type, event_s, call, **where, **fields)
            delay_ms = draw(st.sampled_from([0, 0, 0, 5_000, 14_000, 40_000, 120_000]))
            timed.append((event["ts_ms"] + delay_ms, event))
            if not draw(st.integers(0, 5)):
                timed.append((event["ts_ms"] + draw(st.integers(0, 200_000)), dict(event)))
    for _ in range(draw(st.integers(0, 3))):
        event = agent_event(draw(st.integers(0, 240)))
        timed.append((event["ts_ms"], event))
    timed.sort(key=lambda pair: pair[0])
    return [event for _, event in timed]


@settings(deadline=None, max_examples=120)
@given(events=call_streams(), batch_size=st.sampled_from([1, 3, None]),
       initial_panes=st.sampled_from([1, 64]))
def test_engine_matches_the_reference_on_random_streams(events, batch_size, initial_panes):
    got = run(events, batch_size, engine=PROPERTY_ENGINE, queues=PROPERTY_QUEUES,
              initial_panes=initial_panes)
    expected = reference(events, PROPERTY_ENGINE, PROPERTY_QUEUES)
    assert_records_match(got.records, expected.records)
    assert got.counts["applied"] == expected.counts["applied"]
    assert got.counts["agent_events"] == expected.counts["agent_events"]
    # A re-send of an event whose interval closed in the same batch is counted as a duplicate,
    # in a later batch as late; either way it is counted once and not applied.
    assert (got.counts["duplicates"] + got.counts["late"]
            == expected.counts["duplicates"] + expected.counts["late"])
    assert len(got.late) == got.counts["late"]


@settings(deadline=None, max_examples=40)
@given(events=call_streams(), cut=st.integers(0, 200), batch_size=st.sampled_from([1, 4]))
def test_restoring_the_shards_anywhere_in_a_random_stream_changes_nothing(events, cut,
                                                                          batch_size):
    cut = min(cut, len(events))
    before = PartitionEngine(0, PROPERTY_ENGINE, PROPERTY_QUEUES, initial_panes=2)
    records = []
    applied = list(batches_of(events[:cut], batch_size))
    for offset, batch in enumerate(applied):
        records += before.apply(batch).records
        before.mark_batch(offset, batch)
    after = restored(before, applied, PartitionEngine(0, PROPERTY_ENGINE, PROPERTY_QUEUES,
                                                      initial_panes=2))
    for batch in batches_of(events[cut:], batch_size, first_offset=cut):
        records += after.apply(batch).records
    records += after.close_all().records
    records.sort(key=lambda r: (r["tenant"], r["queue"], r["interval_start_ms"]))
    assert records == run(events, batch_size, engine=PROPERTY_ENGINE,
                          queues=PROPERTY_QUEUES).records
