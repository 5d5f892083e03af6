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
- event ids of the open intervals (duplicates are counted and dropped). Ids of closed
  intervals are forgotten: a repeat of them is late anyway. They are not written to the
  changelog (a busy queue's ids would make every write huge): a restarted engine reads them
  back from the internal batch topic, from :meth:`PartitionEngine.ids_from_offset` (see
  :meth:`PartitionEngine.remember_ids`).
- open calls: call id -> time queued, for a wait when an outcome lacks ``wait_ms``, and for
  the calls waiting now (forgotten ``open_call_ttl_s`` after the queue's latest event).
  Finished calls: outcomes that came before their ``call.queued`` (disorder), so that the
  late ``call.queued`` does not count as waiting.
- ``applied_offset``: the last source offset applied. Rows at or below it are a redelivered
  batch and are skipped: each queue's state and its offset are written to the changelog in
  the same shard value, so a crash can never separate them.

The per-row decisions (redelivered, duplicate, late, applied; open and finished calls) are
one kernel pass over the batch (:func:`kernels.admission.admit`): the queues' scalars are
arrays of the partition's :class:`~streams.queuestate.QueueTable`, and ids and calls are
exact byte-keyed maps there, so no Python object is made per row.
- ``panes``: interval start -> row of the partition's :class:`kernels.aggregate.PaneState`.
- ``minutes``: the 1-minute panes of the last hour, for the realtime records
  (:mod:`streams.realtime`).
- ``agents``: agent id -> (state, since), applied from the updates the engine of each agent's
  partition fans out (:mod:`streams.agentstate`); ``agent.state`` rows themselves update this
  partition's :class:`~streams.agentstate.AgentRegistry`.

Queues are grouped into ``shards_per_partition`` shards; a shard is the unit written to the
changelog (one message per dirty shard per batch, whatever the number of queues): how a
shard is written and read back is :mod:`streams.engine_changelog`.
"""

from __future__ import annotations

import heapq
import zlib
from collections import Counter as Tally
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from kernels import EventKind, Field, PaneState, SketchSpec, aggregate
from kernels.admission import APPLIED, LATE, SKIPPED, admit
from kernels.spanmap import drop_below
from streams.agentstate import AgentRegistry, AgentUpdate, apply_update
from streams.columns import KIND_CODES, ColumnBatch
from streams.contacts import Contact
from streams.contract import MAX_DURATION_MS
from streams.errors import BatchFormatError
from streams.engine_changelog import ChangelogShards, span_column
from streams.queuestate import NO_TIME as _NO_TIME
from streams.queuestate import QueueState, QueueTable
from streams.realtime import MinuteAggregator, realtime_records
from streams.realtime import expire as expire_minutes
from streams.records import IntervalKey, interval_records
from streams.settings import EngineSettings, QueueSettings

__all__ = ["PartitionEngine", "StepResult", "LateEvent", "shard_of"]

_AGENT_KIND = KIND_CODES["agent.state"]
_QUEUED = int(EventKind.QUEUED)

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
    #: Agent changes for the queues they concern (possibly on other partitions).
    agent_updates: list[AgentUpdate] = field(default_factory=list)
    #: Applied ``call.queued`` rows with a caller, for first-contact resolution.
    contacts: list[Contact] = field(default_factory=list)
    #: The partition's new FCR mark (see :mod:`streams.slo.fcr`), when it moved.
    fcr_mark_ms: int | None = None
    # Pane rows closed during the step; their records are built in one call at its end.
    closing_rows: list[int] = field(default_factory=list, repr=False)
    closing_keys: list[IntervalKey] = field(default_factory=list, repr=False)


class PartitionEngine(ChangelogShards):
    """The state of the queues of one source partition."""

    def __init__(self, partition: int, engine: EngineSettings, queues: QueueSettings,
                 initial_panes: int = 64) -> None:
        self.partition = partition
        self.settings = engine
        self.queue_settings = queues
        self.interval_ms = engine.interval_ms
        self.lateness_ms = engine.allowed_lateness_ms
        self.queues: dict[str, QueueState] = {}
        self.table = QueueTable()
        self._by_index: list[QueueState] = []
        self.panes = PaneState.empty(initial_panes, WAIT_SKETCH)
        self._free_rows = list(range(initial_panes - 1, -1, -1))
        self.counts: Tally[str] = Tally()
        self.idle_ms = engine.allowed_lateness_ms + engine.idle_close_s * 1000
        #: The partition clock: the largest call-event time seen in this partition.
        self.max_ts_ms = _NO_TIME
        #: Offset (on the internal batch topic) of the last batch applied, kept with the state
        #: so the worker can tell when batches were skipped (see streams.agents.engine).
        self.batch_offset = -1
        # (internal offset, largest event time) of the batches that may hold ids of open
        # intervals, oldest first: where a restart reads the ids back from.
        self._id_batches: deque[tuple[int, int]] = deque()
        #: Set by :meth:`load_meta`: read ids back from this offset up to ``batch_offset``.
        self.restore_ids_from = -1
        #: The wall clock of the last heartbeat (stage 1 caught up): the realtime clock when
        #: it is ahead of the events.
        self.clock_ms = _NO_TIME
        self.agent_registry = AgentRegistry(self._shard_of)
        self._minutes = MinuteAggregator(WAIT_SKETCH)
        #: Queues changed since the last realtime records.
        self.realtime_dirty: set[str] = set()
        self._shard_queues: dict[int, list[QueueState]] = {}
        #: Per shard, the oldest minute kept when its last value was made (see shard_value).
        self._shard_oldest_minute: dict[int, int] = {}
        # (interval end, queue key) of every open pane, for closing idle queues cheaply.
        self._pane_ends: list[tuple[int, str]] = []
        # The last FCR mark reported; not stored: a restarted engine reports it again.
        self._fcr_mark_ms = _NO_TIME

    # --- applying batches -------------------------------------------------------------------

    def apply(self, batch: ColumnBatch) -> StepResult:
        """Apply one column batch of this partition in arrival order; close the intervals the
        watermarks and the partition clock passed. Rows already applied (a redelivered batch)
        are skipped."""
        if batch.source_partition != self.partition:
            raise BatchFormatError(f"batch of partition {batch.source_partition} given to the "
                                   f"engine of partition {self.partition}")
        if batch.rows == 0:
            self.clock_ms = max(self.clock_ms, batch.clock_ms)
            quiet_ms = batch.clock_ms - batch.quiet_since_ms
            if batch.clock_ms >= 0 and quiet_ms >= self.settings.idle_close_s * 1000:
                return self.close_idle(batch.clock_ms)
            return StepResult()
        result = StepResult()
        a = batch.arrays
        interval_ms, lateness_ms = self.interval_ms, self.lateness_ms
        # "<tenant>/agent/<id>" keys are agents; a queue key has exactly one '/'.
        group_queues = [None if key.count("/") >= 2 else self._queue(key) for key in batch.groups]
        group_index = np.asarray([-1 if q is None else q.index for q in group_queues],
                                 dtype=np.int64)
        queue_of_row = group_index[a["group"]] if group_index.size else np.zeros(0, np.int64)
        queue_of_row[a["kind"] == _AGENT_KIND] = -1
        waits = a["wait_ms"].astype(np.int64)  # a copy: outcomes get waits from open calls
        t = self.table
        admitted = admit(queue_of_row, a["kind"], a["ts_ms"], a["offset"], waits,
                         span_column(batch.texts["event_id"]), span_column(batch.texts["call_id"]),
                         t.max_ts, t.closed_before, t.applied_offset, self.max_ts_ms, t.seen,
                         t.open_calls, t.finished, interval_ms=interval_ms,
                         lateness_ms=lateness_ms, idle_ms=self.idle_ms,
                         open_call_ttl_ms=self.settings.open_call_ttl_s * 1000)
        status = admitted.status
        pane_index = self._pane_rows(queue_of_row, admitted.start, status)
        counts = result.counts
        for name, value in (("redelivered", admitted.redelivered),
                            ("duplicates", admitted.duplicates), ("late", admitted.late),
                            ("open_calls_expired", admitted.expired),
                            ("applied", admitted.applied)):
            if value:
                counts[name] += value
        if admitted.late:
            events = list(batch.events())
            offsets = a["offset"]
            result.late = [LateEvent(self.partition, int(offsets[i]), events[i],
                                     int(admitted.start[i]), int(admitted.horizon[i]))
                           for i in np.flatnonzero(status == LATE).tolist()]
        # Per-row policy limits, looked up once per queue of the batch.
        limits = np.asarray([(0, 0) if q is None else (q.policy.threshold_ms,
                                                        q.policy.short_abandon_ms)
                             for q in group_queues], dtype=np.int64).reshape(-1, 2)
        threshold_ms = limits[a["group"], 0]
        short_ms = limits[a["group"], 1]
        aggregate(self.panes, pane_index, a["kind"], waits, a["talk_ms"], a["hold_ms"],
                  a["acw_ms"], threshold_ms, short_ms)
        self._count_dispositions(batch, pane_index)
        result.contacts = self._contacts(batch, pane_index, group_queues)
        self._minutes.add(group_queues, a["group"], a["ts_ms"], pane_index, a["kind"], waits,
                          a["talk_ms"], a["hold_ms"], a["acw_ms"], threshold_ms, short_ms)
        agent_rows = np.flatnonzero(status == SKIPPED).tolist()
        if agent_rows:
            updates, agent_shards = self.agent_registry.apply_rows(batch, agent_rows, counts)
            result.agent_updates = updates
            result.dirty_shards |= agent_shards
        touched = [self._by_index[i] for i in np.flatnonzero(admitted.touched).tolist()]
        self.realtime_dirty.update(q.key for q in touched)
        self.max_ts_ms = admitted.partition_max_ts
        idle_horizon = _floor(self.max_ts_ms - self.idle_ms, interval_ms)
        for q in touched:
            q.changed()
            result.dirty_shards.add(q.shard)
            self._close(q, max(_floor(q.max_ts_ms - lateness_ms, interval_ms), idle_horizon),
                        result)
        self._close_through(idle_horizon, result)
        self._expire_open_calls(counts)
        self._finish(result)
        self._report_mark(result)
        self.counts.update(counts)
        return result

    def _pane_rows(self, queue_of_row: np.ndarray, start: np.ndarray, status: np.ndarray
                   ) -> np.ndarray:
        """The pane row of every applied row (-1 for the others), opening the panes that are
        new: one lookup per (queue, interval) of the batch, not per row."""
        pane_index = np.full(status.size, -1, dtype=np.int64)
        applied = np.flatnonzero(status == APPLIED)
        if not applied.size:
            return pane_index
        combos, inverse = np.unique(
            (queue_of_row[applied] << 32) | (start[applied] // self.interval_ms), return_inverse=True)
        rows = np.empty(combos.size, dtype=np.int64)
        for j, value in enumerate(combos.tolist()):
            q = self._by_index[value >> 32]
            pane_start = (value & 0xFFFFFFFF) * self.interval_ms
            row = q.panes.get(pane_start)
            if row is None:
                row = q.panes[pane_start] = self._allocate_row()
                heapq.heappush(self._pane_ends, (pane_start + self.interval_ms, q.key))
            rows[j] = row
        pane_index[applied] = rows[inverse]
        return pane_index

    def _expire_open_calls(self, counts: Tally[str]) -> None:
        """Forget open calls queued more than ``open_call_ttl_s`` before their queue's latest
        event (a lost outcome must not keep a call waiting forever)."""
        t = self.table
        dropped = np.zeros(t.size, dtype=np.int64)
        expired = drop_below(t.open_calls.parts,
                             t.max_ts[:t.size] - self.settings.open_call_ttl_s * 1000, dropped)
        if expired:
            counts["open_calls_expired"] += expired
            # (queues of this batch, whose clock moved, and so already marked changed:
            # marked here too, so the shard cache does not rest on that)
            for index in np.flatnonzero(dropped).tolist():
                self._by_index[index].changed()

    def _contacts(self, batch: ColumnBatch, pane_index: np.ndarray,
                  group_queues: list[QueueState | None]) -> list[Contact]:
        """The applied ``call.queued`` rows that name a caller."""
        rows = np.flatnonzero((batch.arrays["kind"] == _QUEUED) & (pane_index >= 0)
                              & batch.texts["caller"].valid)
        if not rows.size:
            return []
        callers = batch.texts["caller"].values_at(rows)
        call_ids = batch.texts["call_id"].values_at(rows)
        groups = batch.arrays["group"][rows].tolist()
        times = batch.arrays["ts_ms"][rows].tolist()
        out = []
        for caller, call_id, group, ts_ms in zip(callers, call_ids, groups, times):
            q = group_queues[group]
            assert q is not None
            out.append(Contact(q.tenant, caller, call_id, q.queue, ts_ms))
        return out

    def _report_mark(self, result: StepResult) -> None:
        """Every contact this engine reports later has ``ts_ms`` at or after its idle horizon
        (an earlier call.queued is late here): that horizon is the partition's FCR mark."""
        mark = _floor(self.max_ts_ms - self.idle_ms, self.interval_ms)
        if self.max_ts_ms != _NO_TIME and mark > self._fcr_mark_ms:
            self._fcr_mark_ms = result.fcr_mark_ms = mark

    def _count_dispositions(self, batch: ColumnBatch, pane_index: np.ndarray) -> None:
        """``dispositioned``: applied call.wrapup_ended rows that carry a disposition (the
        kernel sees numbers only)."""
        has = batch.texts["disposition"].valid
        rows = pane_index[has & (batch.arrays["kind"] == EventKind.WRAPUP_ENDED)
                          & (pane_index >= 0)]
        if rows.size:
            np.add.at(self.panes.records[:, Field.DISPOSITIONED], rows, 1)

    def apply_agent_updates(self, updates: Iterable[AgentUpdate]) -> StepResult:
        """Apply agent changes fanned out to this partition's queues."""
        result = StepResult()
        for update in updates:
            # Agent-only queues need a clock for their realtime records too.
            self.clock_ms = max(self.clock_ms, update.ts_ms)
            q = self._queue(update.queue_key)
            if apply_update(q.agents, update):
                q.changed()
                result.dirty_shards.add(q.shard)
                self.realtime_dirty.add(q.key)
                result.counts["agent_updates"] += 1
            else:
                result.counts["agent_updates_stale"] += 1
        self.counts.update(result.counts)
        return result

    def realtime(self, emitted_at_ms: int, refresh_ms: int = 60_000) -> list[dict[str, Any]]:
        """Realtime records of the queues that changed since the last call, that have calls
        waiting (their waits grow), or whose last record is ``refresh_ms`` old while they
        still have recent panes or agents (their windows slide)."""
        now_ms = max(self.max_ts_ms, self.clock_ms)
        if now_ms == _NO_TIME:
            return []
        dirty = self.realtime_dirty
        open_calls, _ = self.table.waiting(np.iinfo(np.int64).max)
        due = [q for q in self.queues.values()
               if q.key in dirty or open_calls[q.index]
               or ((q.minutes or q.agents) and now_ms - q.realtime_at_ms >= refresh_ms)]
        self.realtime_dirty = set()
        for q in due:
            q.realtime_at_ms = now_ms
            if expire_minutes(q.minutes, now_ms):
                q.changed()
        counts, oldest = self.table.waiting(now_ms)
        waiting = {q.key: (int(counts[q.index]), int(oldest[q.index])) for q in due}
        return realtime_records(due, now_ms, WAIT_SKETCH, emitted_at_ms, waiting)

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
        self._finish(result)
        self._report_mark(result)
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
        self._finish(result)
        self.counts.update(result.counts)
        return result

    def _close(self, q: QueueState, horizon: int, result: StepResult) -> None:
        """Close every pane of ``q`` that ends at or before ``horizon``. The queue's ids and
        finished calls before the new ``closed_before_ms`` become stale there and then (the
        maps count them as absent; late events never enter them)."""
        if horizon > q.closed_before_ms:
            q.closed_before_ms = horizon
            q.changed()
        closing = sorted(start for start in q.panes if start + self.interval_ms <= q.closed_before_ms)
        if closing:
            q.changed()
        for start in closing:
            result.closing_rows.append(q.panes.pop(start))
            result.closing_keys.append(IntervalKey(q.tenant, q.queue, start, q.policy))

    def _finish(self, result: StepResult) -> None:
        """Build the records of every pane closed in the step at once, then free the rows."""
        rows = result.closing_rows
        if rows:
            result.records.extend(interval_records(self.panes, rows, result.closing_keys,
                                                   self.interval_ms))
            self.panes.reset(np.asarray(rows, dtype=np.int64))
            self._free_rows.extend(rows)
            result.closing_rows, result.closing_keys = [], []

    # --- queues and pane rows ----------------------------------------------------------------

    def _queue(self, key: str) -> QueueState:
        q = self.queues.get(key)
        if q is None:
            tenant, _, queue = key.partition("/")
            q = self.queues[key] = QueueState(key, self.queue_settings.policy(tenant, queue),
                                              self._shard_of(key), self.table)
            self._by_index.append(q)
            self._shard_queues.setdefault(q.shard, []).append(q)
        return q

    def _shard_of(self, key: str) -> int:
        return shard_of(key, self.settings.shards_per_partition)

    def _allocate_row(self) -> int:
        if not self._free_rows:
            old_size = self.panes.n_panes
            self.panes = self.panes.resized(old_size * 2)
            self._free_rows = list(range(self.panes.n_panes - 1, old_size - 1, -1))
        return self._free_rows.pop()


def _floor(value: int, step: int) -> int:
    return value - value % step

