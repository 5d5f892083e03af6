"""Lazy changelog writes: a flush that stopped half way (some shards written, no marker) and
the batches since the last marker re-applied give exactly the records of an uninterrupted
run. This is the recovery the worker relies on when ``engine.state_flush_ms`` > 0."""

from __future__ import annotations

import pytest

from streams.engine import PartitionEngine
from tests.unit.test_engine import ENGINE, QUEUES, a_busy_stream, batches_of


def _sorted(records):
    return sorted(records, key=lambda r: (r["tenant"], r["queue"], r["interval_start_ms"]))


@pytest.mark.parametrize("marker_at, crash_at, shards_written", [(2, 6, 1), (0, 9, 2), (4, 5, 0)])
def test_a_half_written_flush_is_repaired_by_reapplying_since_the_marker(
        marker_at, crash_at, shards_written):
    events = a_busy_stream()
    batches = list(batches_of(events, 7))
    uninterrupted = PartitionEngine(0, ENGINE, QUEUES)
    expected = [r for b in batches for r in uninterrupted.apply(b).records]
    expected += uninterrupted.close_all().records

    live = PartitionEngine(0, ENGINE, QUEUES)
    published = []
    changelog: dict[bytes, bytes] = {}
    dirty: set[int] = set()
    for offset, batch in enumerate(batches[:crash_at]):
        step = live.apply(batch)
        live.mark_batch(offset, batch)
        published += step.records
        dirty |= step.dirty_shards
        if offset == marker_at:  # a complete flush: every dirty shard, then the marker
            changelog.update({live.shard_key(s): live.shard_value(s) for s in dirty})
            changelog[live.meta_key()] = live.meta_value()
            dirty = set()
    # The flush at the crash wrote some of its shards and never got to the marker.
    for shard in sorted(dirty)[:shards_written]:
        changelog[live.shard_key(shard)] = live.shard_value(shard)

    restarted = PartitionEngine(0, ENGINE, QUEUES)
    for key, value in changelog.items():
        if key != restarted.meta_key():
            restarted.load_shard(value)
    restarted.load_meta(changelog[restarted.meta_key()])
    assert restarted.batch_offset == marker_at
    for offset in range(max(restarted.restore_ids_from, 0), marker_at + 1):
        restarted.remember_ids(offset, batches[offset])  # ids are not in the changelog
    for batch in batches[marker_at + 1:]:  # the gap repair, then the stream goes on
        published += restarted.apply(batch).records
    published += restarted.close_all().records

    final = {}
    for record in published:  # consumers keep one record per interval; repeats are identical
        key = (record["tenant"], record["queue"], record["interval_start_ms"])
        assert final.setdefault(key, record) == record
    assert _sorted(final.values()) == _sorted(expected)
