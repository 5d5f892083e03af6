"""Batch boundaries never change what the engine decides about a repeated event: a repeat of
an event whose interval closed is late (dead-lettered), whether that interval closed in an
earlier batch or earlier in the same batch."""

from __future__ import annotations

from typing import Any

from streams.columns import build_batch
from streams.engine import PartitionEngine
from streams.settings import EngineSettings, QueueSettings

ENGINE = EngineSettings(interval_s=900, allowed_lateness_s=120, idle_close_s=60)
T0_MS = 1_700_000_100_000 // 900_000 * 900_000  # an interval start


def _queued(n: int, at_s: float) -> dict[str, Any]:
    return {"event_id": f"acme-q{n}", "type": "call.queued", "ts_ms": T0_MS + round(at_s * 1000),
            "tenant": "acme", "queue": "support", "call_id": f"c{n}"}


def _run(events: list[dict[str, Any]], batch_size: int) -> tuple[list, list, dict[str, int]]:
    engine = PartitionEngine(0, ENGINE, QueueSettings())
    records, late = [], []
    rows = list(enumerate(events))
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        step = engine.apply(build_batch("events", 0, chunk, chunk[0][0], chunk[-1][0]))
        records.extend(step.records)
        late.extend(step.late)
    records.extend(engine.close_all().records)
    return records, [x.event["event_id"] for x in late], dict(engine.counts)


def test_a_repeat_after_its_interval_closed_is_late_in_one_batch_as_in_many():
    first = _queued(1, 10)
    # The next interval's events move the watermark past the first interval's end + the
    # allowed lateness; then the first event comes again (a producer retry, delivered late).
    events = [first, _queued(2, 600), _queued(3, 900 + 130), _queued(4, 900 + 200), dict(first)]
    one_by_one = _run(events, batch_size=1)
    assert one_by_one[1] == ["acme-q1"]
    assert one_by_one[2]["late"] == 1 and one_by_one[2].get("duplicates", 0) == 0
    for size in (2, 3, len(events)):
        assert _run(events, batch_size=size) == one_by_one, size


def test_a_repeat_within_the_open_interval_is_a_duplicate_in_any_batching():
    first = _queued(1, 10)
    events = [first, _queued(2, 600), dict(first), _queued(3, 900 + 130)]
    for size in (1, 2, len(events)):
        records, late, counts = _run(events, batch_size=size)
        assert late == [] and counts["duplicates"] == 1, size
        assert [r["entered"] for r in records] == [2, 1]
