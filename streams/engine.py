"""Stage 2's state machine for one partition: column batches in, final interval records out.

Everything here is plain Python and numpy with the numba kernels doing the counting; no Kafka,
no Faust. The worker's agent (``streams/agents/``) and offline replay (``streams/replay.py``)
drive the same :class:`PartitionEngine`, which is why replay and streaming agree.

Per queue (``<tenant>/<queue>``) the engine keeps:

- ``max_ts_ms``: the largest event time seen. The watermark is ``max_ts_ms -
  allowed_lateness``; an interval closes when the watermark reaches its end.
- Idle queues: an interval also closes when the *partition's* clock passes its end +
  allowed lateness + ``idle_close_s``. The partition clock is the largest event time seen in
  the partition, so a worker catching up on a backlog closes nothing early. When the whole
  partition is quiet, stage 1's heartbeats (empty batches in the partition's own order, sent
  only while stage 1 is caught up) carry the wall clock; once one reports ``idle_close_s`` of
  quiet, the wall clock stands in for the partition clock (:meth:`PartitionEngine.close_idle`).
  Everything is decided per event or per heartbeat in the partition's order, never by a timer,
  so the state after a batch is a function of the batches before it: a redelivered batch
  gives the same records again, and batch boundaries never change a result.
- ``closed_before_ms``: every interval ending at or before it is closed. An event for a closed
  interval is *late*: dead-lettered with reason ``late``, never applied.
- ``seen``: event ids of the open intervals (duplicates are counted and dropped). Ids of
  closed intervals are forgotten: a repeat of them is late anyway.
- ``open_calls``: call id -> time queued, for a wait when an outcome lacks ``wait_ms``.
- ``applied_offset``: the last source offset applied. Rows at or below it are a redelivered
  batch and are skipped: each queue's state and its offset are written to the changelog in
  the same shard value, so a crash can never separate them.
- ``panes``: interval start -> row of the partition's :class:`kernels.aggregate.PaneState`.

Queues are grouped into ``shards_per_partition`` shards; a shard is the unit written to the
changelog (one message per dirty shard per batch, whatever the number of queues).
"""

from __future__ import annotations

import heapq
import zlib
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import orjson

from kernels import EventKind, PaneState, SketchSpec, aggregate
from streams.columns import KIND_CODES, ColumnBatch
from streams.contract import MAX_DURATION_MS
from streams.errors import BatchFormatError
from streams.records import IntervalKey, interval_records
from streams.settings import EngineSettings, QueuePolicy, QueueSettings

__all__ = ["PartitionEngine", "StepResult", "LateEvent", "shard_of"]

_AGENT_KIND = KIND_CODES["agent.state"]
_OUTCOMES = (EventKind.ANSWERED, EventKind.ABANDONED, EventKind.DEQUEUED)
_SHARD_MAGIC = b"CSQS"
_NO_TIME = -(2**62)

#: Answered-wait sketches: 1 % relative error from 1 ms up to the longest wait the contract
#: accepts (7 days), so no valid wait is clamped.
WAIT_SKETCH = SketchSpec(alpha=0.01, min_value=1.0, max_value=float(MAX_DURATION_MS))


def shard_of(queue_key: str, shards: int) -> int:
    """The shard of a queue: stable across processes and versions (CRC-32 of the key)."""
    return zlib.crc32(queue_key.encode()) % shards


@dataclass(frozen=True, slots=True)
class LateEvent:
    """A row that arrived after its interval closed, with where it came from."""

    source_partition: int
    offset: int
    event: dict[str, Any]
    interval_start_ms: int
    closed_before_ms: int


@dataclass
class StepResult:
    """What one engine step produced."""

    records: list[dict[str, Any]] = field(default_factory=list)
    late: list[LateEvent] = field(default_factory=list)
    dirty_shards: set[int] = field(default_factory=set)
    counts: Tally[str] = field(default_factory=Tally)


class _Queue:
    __slots__ = ("key", "tenant", "queue", "policy", "shard", "max_ts_ms", "closed_before_ms",
                 "applied_offset", "seen", "open_calls", "panes")

    def __init__(self, key: str, policy: QueuePolicy, shard: int) -> None:
        self.key = key
        self.tenant, _, self.queue = key.partition("/")
        self.policy = policy
        self.shard = shard
        self.max_ts_ms = _NO_TIME
        self.closed_before_ms = _NO_TIME
        self.applied_offset = -1
        self.seen: dict[str, int] = {}
        self.open_calls: dict[str, int] = {}
        self.panes: dict[int, int] = {}


class PartitionEngine:
    """The state of the queues of one source partition."""

    def __init__(self, partition: int, engine: EngineSettings, queues: QueueSettings,
                 initial_panes: int = 64) -> None:
        self.partition = partition
        self.settings = engine
        self.queue_settings = queues
        self.interval_ms = engine.interval_ms
        self.lateness_ms = engine.allowed_lateness_ms
        self.queues: dict[str, _Queue] = {}
        self.panes = PaneState.empty(initial_panes, WAIT_SKETCH)
        self._free_rows = list(range(initial_panes - 1, -1, -1))
        self.counts: Tally[str] = Tally()
        self.idle_ms = engine.allowed_lateness_ms + engine.idle_close_s * 1000
        #: The partition clock: the largest call-event time seen in this partition.
        self.max_ts_ms = _NO_TIME
        #: Offset (on the internal batch topic) of the last batch applied, kept with the state
        #: so the worker can tell when batches were skipped (see streams.agents.engine).
        self.batch_offset = -1
        # (interval end, queue key) of every open pane, for closing idle queues cheaply.
        self._pane_ends: list[tuple[int, str]] = []

    # --- applying batches -------------------------------------------------------------------

    def apply(self, batch: ColumnBatch) -> StepResult:
        """Apply one column batch of this partition in arrival order; close the intervals the
        watermarks and the partition clock passed. Rows already applied (a redelivered batch)
        are skipped."""
        if batch.source_partition != self.partition:
            raise BatchFormatError(f"batch of partition {batch.source_partition} given to the "
                                   f"engine of partition {self.partition}")
        if batch.rows == 0:
            quiet_ms = batch.clock_ms - batch.quiet_since_ms
            if batch.clock_ms >= 0 and quiet_ms >= self.settings.idle_close_s * 1000:
                return self.close_idle(batch.clock_ms)
            return StepResult()
        result = StepResult()
        a = batch.arrays
        n = batch.rows
        offsets = a["offset"].tolist()
        times = a["ts_ms"].tolist()
        kinds = a["kind"].tolist()
        groups = a["group"].tolist()
        waits = a["wait_ms"].copy()
        event_ids = batch.strings["event_id"]
        call_ids = batch.strings["call_id"]
        # "<tenant>/agent/<id>" keys are agents; a queue key has exactly one '/'.
        group_queues = [None if key.count("/") >= 2 else self._queue(key) for key in batch.groups]
        late_rows: list[tuple[int, int, int]] = []
        pane_index = np.full(n, -1, dtype=np.int64)
        threshold_ms = np.zeros(n, dtype=np.int64)
        short_ms = np.zeros(n, dtype=np.int64)
        interval_ms, lateness_ms, idle_ms = self.interval_ms, self.lateness_ms, self.idle_ms
        partition_max_ts = self.max_ts_ms
        open_call_ttl_ms = self.settings.open_call_ttl_s * 1000
        touched: set[_Queue] = set()
        counts = result.counts
        for i in range(n):
            q = group_queues[groups[i]]
            kind = kinds[i]
            if q is None or kind == _AGENT_KIND:
                # agent.state fan-out to queues is not applied by this engine version.
                counts["agent_events"] += 1
                continue
            offset = offsets[i]
            if offset <= q.applied_offset:
                counts["redelivered"] += 1
                continue
            q.applied_offset = offset
            touched.add(q)
            event_id = event_ids[i]
            ts = times[i]
            start = ts - ts % interval_ms
            # The horizon before this event (its own time cannot make it late). An id seen
            # before this horizon belongs to an interval that closed, maybe earlier in this
            # batch, and is forgotten as _close forgets it between batches: a repeat of it
            # is late, whatever the batch boundaries.
            horizon = max(q.closed_before_ms, _floor(q.max_ts_ms - lateness_ms, interval_ms),
                          _floor(partition_max_ts - idle_ms, interval_ms))
            seen_ts = q.seen.get(event_id)
            if seen_ts is not None and seen_ts >= horizon:
                counts["duplicates"] += 1
                continue
            if ts > q.max_ts_ms:
                q.max_ts_ms = ts
                if ts > partition_max_ts:
                    partition_max_ts = ts
            if start + interval_ms <= horizon:
                counts["late"] += 1
                late_rows.append((i, start, horizon))
                continue
            q.seen[event_id] = ts
            if kind == EventKind.QUEUED:
                q.open_calls[call_ids[i]] = ts
            elif kind in _OUTCOMES:
                queued_at = q.open_calls.pop(call_ids[i], None)
                if queued_at is not None and queued_at < q.max_ts_ms - open_call_ttl_ms:
                    # Forgotten whatever the batch boundaries: the same rule as _close's.
                    counts["open_calls_expired"] += 1
                    queued_at = None
                if waits[i] < 0 and queued_at is not None:
                    waits[i] = max(0, ts - queued_at)
            row = q.panes.get(start)
            if row is None:
                row = q.panes[start] = self._allocate_row()
                heapq.heappush(self._pane_ends, (start + interval_ms, q.key))
            pane_index[i] = row
            threshold_ms[i] = q.policy.threshold_ms
            short_ms[i] = q.policy.short_abandon_ms
            counts["applied"] += 1
        if late_rows:
            events = list(batch.events())
            result.late = [LateEvent(self.partition, offsets[i], events[i], start, horizon)
                           for i, start, horizon in late_rows]
        aggregate(self.panes, pane_index, a["kind"], waits, a["talk_ms"], a["hold_ms"],
                  a["acw_ms"], threshold_ms, short_ms)
        self.max_ts_ms = partition_max_ts
        idle_horizon = _floor(partition_max_ts - idle_ms, interval_ms)
        for q in touched:
            result.dirty_shards.add(q.shard)
            self._close(q, max(_floor(q.max_ts_ms - lateness_ms, interval_ms), idle_horizon),
                        result)
        self._close_through(idle_horizon, result)
        self.counts.update(counts)
        return result

    def close_idle(self, now_ms: int) -> StepResult:
        """Let the wall clock ``now_ms`` stand in for the partition clock (a heartbeat of a
        partition quiet for ``idle_close_s``): every interval whose end + allowed lateness +
        idle_close_s lies before ``now_ms`` closes."""
        result = StepResult()
        before = _floor(self.max_ts_ms - self.idle_ms, self.interval_ms)
        if now_ms > self.max_ts_ms:
            self.max_ts_ms = now_ms
        horizon = _floor(self.max_ts_ms - self.idle_ms, self.interval_ms)
        self._close_through(horizon, result)
        if horizon > before and self.queues and not result.dirty_shards:
            # Nothing closed, but the partition clock moved: persist it with some shard, so
            # that a restarted worker judges later events as this one would.
            result.dirty_shards.add(next(iter(self.queues.values())).shard)
        self.counts.update(result.counts)
        return result

    def _close_through(self, horizon: int, result: StepResult) -> None:
        """Close every open interval ending at or before ``horizon`` (idle queues)."""
        ends = self._pane_ends
        while ends and ends[0][0] <= horizon:
            end, key = heapq.heappop(ends)
            q = self.queues[key]
            if end - self.interval_ms in q.panes:
                result.dirty_shards.add(q.shard)
                self._close(q, horizon, result)

    def close_all(self) -> StepResult:
        """Close every open interval (end of a replay)."""
        result = StepResult()
        for q in self.queues.values():
            if q.panes:
                result.dirty_shards.add(q.shard)
                self._close(q, max(q.panes) + self.interval_ms, result)
        self.counts.update(result.counts)
        return result

    def _close(self, q: _Queue, horizon: int, result: StepResult) -> None:
        if horizon > q.closed_before_ms:
            q.closed_before_ms = horizon
        closing = sorted(start for start in q.panes if start + self.interval_ms <= q.closed_before_ms)
        if closing:
            rows = [q.panes.pop(start) for start in closing]
            keys = [IntervalKey(q.tenant, q.queue, start, q.policy) for start in closing]
            result.records.extend(interval_records(self.panes, rows, keys, self.interval_ms))
            self.panes.reset(np.asarray(rows, dtype=np.int64))
            self._free_rows.extend(rows)
        if q.seen:
            q.seen = {eid: ts for eid, ts in q.seen.items() if ts >= q.closed_before_ms}
        if q.open_calls:
            oldest = q.max_ts_ms - self.settings.open_call_ttl_s * 1000
            if min(q.open_calls.values()) < oldest:
                expired = {c: t for c, t in q.open_calls.items() if t < oldest}
                result.counts["open_calls_expired"] += len(expired)
                q.open_calls = {c: t for c, t in q.open_calls.items() if t >= oldest}

    # --- queues and pane rows ----------------------------------------------------------------

    def _queue(self, key: str) -> _Queue:
        q = self.queues.get(key)
        if q is None:
            tenant, _, queue = key.partition("/")
            q = self.queues[key] = _Queue(key, self.queue_settings.policy(tenant, queue),
                                          shard_of(key, self.settings.shards_per_partition))
        return q

    def _allocate_row(self) -> int:
        if not self._free_rows:
            old_size = self.panes.n_panes
            self.panes = self.panes.resized(old_size * 2)
            self._free_rows = list(range(self.panes.n_panes - 1, old_size - 1, -1))
        return self._free_rows.pop()

    # --- changelog shards --------------------------------------------------------------------

    def shard_key(self, shard: int) -> bytes:
        """The table key of one shard of this partition."""
        return f"{self.partition}/{shard}".encode()

    def shard_value(self, shard: int) -> bytes:
        """Serialise every queue of ``shard``: its scalars, ids, open calls and open panes."""
        queues = [q for q in self.queues.values() if q.shard == shard]
        rows: list[int] = []
        described = []
        for q in queues:
            starts = sorted(q.panes)
            rows.extend(q.panes[s] for s in starts)
            described.append({
                "key": q.key, "max_ts_ms": q.max_ts_ms, "closed_before_ms": q.closed_before_ms,
                "applied_offset": q.applied_offset, "seen": list(q.seen.items()),
                "open_calls": list(q.open_calls.items()), "pane_starts": starts,
            })
        header = orjson.dumps({"v": 1, "partition": self.partition, "shard": shard,
                               "partition_max_ts_ms": self.max_ts_ms,
                               "batch_offset": self.batch_offset, "queues": described})
        sub = self.panes.take(np.asarray(rows, dtype=np.int64))
        return b"".join([_SHARD_MAGIC, len(header).to_bytes(4, "little"), header, sub.to_bytes()])

    def load_shard(self, value: bytes) -> None:
        """Restore the queues of one shard from :meth:`shard_value` bytes (recovery)."""
        if value[:4] != _SHARD_MAGIC:
            raise BatchFormatError("not a callslo queue-state shard (bad magic)")
        header_len = int.from_bytes(value[4:8], "little")
        header = orjson.loads(value[8:8 + header_len])
        panes = PaneState.from_bytes(value[8 + header_len:])
        # Every batch that moves the partition clock rewrites at least the shard of the queue
        # that moved it, so the largest value over the shards is the clock of the last batch.
        self.max_ts_ms = max(self.max_ts_ms, header["partition_max_ts_ms"])
        self.batch_offset = max(self.batch_offset, header.get("batch_offset", -1))
        position = 0
        for item in header["queues"]:
            q = self._queue(item["key"])
            q.max_ts_ms = item["max_ts_ms"]
            q.closed_before_ms = item["closed_before_ms"]
            q.applied_offset = item["applied_offset"]
            q.seen = dict(item["seen"])
            q.open_calls = dict(item["open_calls"])
            for row in q.panes.values():
                self.panes.reset(np.asarray([row], dtype=np.int64))
                self._free_rows.append(row)
            q.panes = {}
            starts = item["pane_starts"]
            rows = []
            for start in starts:
                row = q.panes[start] = self._allocate_row()
                heapq.heappush(self._pane_ends, (start + self.interval_ms, q.key))
                rows.append(row)
            if rows:
                self.panes.put(np.asarray(rows, dtype=np.int64),
                               panes.take(np.arange(position, position + len(rows))))
                position += len(rows)

    def all_shard_values(self) -> Iterable[tuple[int, bytes]]:
        shards = sorted({q.shard for q in self.queues.values()})
        return ((s, self.shard_value(s)) for s in shards)


def _floor(value: int, step: int) -> int:
    return value - value % step

