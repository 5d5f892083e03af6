"""Heartbeats: how a quiet partition's idle intervals close, in the partition's own order."""

from __future__ import annotations

from streams.columns import ColumnBatch, build_batch
from streams.engine import PartitionEngine
from streams.settings import Settings

INTERVAL_MS = 900_000
T0 = 1_790_000_100_000 // INTERVAL_MS * INTERVAL_MS


def _engine() -> PartitionEngine:
    s = Settings.from_mapping({}, env={})
    return PartitionEngine(0, s.engine, s.queues)


def _queued(offset: int, ts: int, queue: str = "sales") -> tuple[int, dict]:
    return offset, {"event_id": f"e{offset}", "type": "call.queued", "ts_ms": ts,
                    "tenant": "acme", "queue": queue, "call_id": f"c{offset}", "v": 1}


def test_heartbeat_round_trips_and_has_no_rows():
    beat = ColumnBatch.from_bytes(ColumnBatch.heartbeat("events", 3, 5_000, 1_000).to_bytes())
    assert (beat.rows, beat.source_partition, beat.clock_ms, beat.quiet_since_ms) == (0, 3, 5_000, 1_000)
    assert ColumnBatch.from_bytes(build_batch("events", 0, [_queued(1, T0)], 1, 1).to_bytes()).clock_ms == -1


def test_a_heartbeat_closes_idle_intervals_only_after_idle_close_s_of_quiet():
    engine = _engine()
    engine.apply(build_batch("events", 0, [_queued(1, T0 + 1000)], 1, 1))
    idle_ms = (120 + 60) * 1000
    wall = T0 + INTERVAL_MS + idle_ms + 5_000  # past end + lateness + idle_close_s
    # quiet for 59 s: a stall or a short gap, nothing closes
    assert engine.apply(ColumnBatch.heartbeat("events", 0, wall, wall - 59_000)).records == []
    step = engine.apply(ColumnBatch.heartbeat("events", 0, wall, wall - 60_000))
    assert [(r["queue"], r["interval_start_ms"], r["entered"]) for r in step.records] == [
        ("sales", T0, 1)]
    assert step.dirty_shards
    # the interval is final: an event for it now is late
    late = engine.apply(build_batch("events", 0, [_queued(2, T0 + 2000)], 2, 2))
    assert late.records == [] and len(late.late) == 1


def test_a_heartbeat_before_the_interval_end_closes_nothing():
    engine = _engine()
    engine.apply(build_batch("events", 0, [_queued(1, T0 + 1000)], 1, 1))
    wall = T0 + INTERVAL_MS + 60_000  # within allowed lateness + idle_close_s
    assert engine.apply(ColumnBatch.heartbeat("events", 0, wall, wall - 600_000)).records == []


def test_the_partition_clock_moved_by_a_heartbeat_survives_a_restart():
    engine = _engine()
    engine.apply(build_batch("events", 0, [_queued(1, T0 + 1000, "a")], 1, 1))
    engine.apply(build_batch("events", 0, [_queued(2, T0 + 5 * INTERVAL_MS, "b")], 2, 2))
    # queue a's interval closed on the partition clock; a heartbeat moves the clock further
    wall = T0 + 9 * INTERVAL_MS
    step = engine.apply(ColumnBatch.heartbeat("events", 0, wall, wall - 3_600_000))
    restored = _engine()
    for shard, value in engine.all_shard_values():
        restored.load_shard(value)
    assert restored.max_ts_ms == engine.max_ts_ms == wall
    assert step.dirty_shards
