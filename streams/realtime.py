"""Real-time state of a queue: 1-minute panes, rolling windows, and the snapshot records built
from them (schema ``slo.queue-realtime.v1``, documented in docs/metrics.md).

A 1-minute pane holds the same counters as an interval pane and a *sparse* answered-wait
sketch (:mod:`kernels.sparse`): sixty dense sketches per queue would cost ~700 KB a queue,
the sparse ones a few hundred bytes for a typical minute. Panes are kept for the longest
rolling window (60 minutes) and persisted with the queue's shard, so a restarted worker
reports the same rolling figures as the one it replaces.

Windows are counted by event time: the "15-minute" window at clock ``now`` is the minute
pane holding ``now`` and the 14 before it. ``now`` is the partition's clock: the largest event
time seen, or the wall clock stage 1's heartbeats report while the partition is quiet.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import orjson

from kernels import EventKind, Field, PaneState, SketchSpec, aggregate, merge_sparse
from kernels import sparse_group_summary
from kernels.sparse import SparseSketch, sparse_groups_flat
from streams.records import wait_column, window_columns

__all__ = ["MINUTE_MS", "WINDOWS", "MinutePane", "MinuteAggregator", "realtime_records",
           "minutes_to_json", "minutes_from_json", "oldest_kept"]

MINUTE_MS = 60_000
#: Rolling windows of the realtime record: (minutes, field prefix).
WINDOWS = ((15, "w15m"), (60, "w60m"))
KEEP_MINUTES = max(minutes for minutes, _ in WINDOWS)
_MAX_WAIT = int(Field.MAX_WAIT_MS)
_N_FIELDS = len(Field)
_COUNTERS_ONLY = SketchSpec(alpha=0.49, min_value=1.0, max_value=1.5)


class MinutePane:
    """Counters (``kernels.Field`` order) and a sparse answered-wait sketch of one minute."""

    __slots__ = ("record", "sketch", "_encoded")

    def __init__(self, record: np.ndarray, sketch: SparseSketch) -> None:
        self.record = record
        self.sketch = sketch
        # The pane's changelog form, kept until the pane changes: every state flush writes
        # the whole last hour of each dirty queue, and most of its minutes are done.
        self._encoded: tuple[int, orjson.Fragment] | None = None

    def encoded(self, start: int) -> orjson.Fragment:
        """``[start, record, bucket positions, counts]`` as JSON, made once per change."""
        if self._encoded is None or self._encoded[0] != start:
            self._encoded = (start, orjson.Fragment(orjson.dumps(
                [start, self.record.tolist(), self.sketch[0].tolist(), self.sketch[1].tolist()])))
        return self._encoded[1]

    def add(self, record: np.ndarray, sketch: SparseSketch) -> None:
        self._encoded = None
        max_wait = max(self.record[_MAX_WAIT], record[_MAX_WAIT])
        self.record += record
        self.record[_MAX_WAIT] = max_wait
        if sketch[0].size:
            self.sketch = merge_sparse([self.sketch, sketch]) if self.sketch[0].size else sketch


class MinuteAggregator:
    """Adds the applied rows of a column batch to the minute panes of their queues."""

    def __init__(self, spec: SketchSpec) -> None:
        self.spec = spec

    def add(self, queues: Sequence[Any], group: np.ndarray, ts_ms: np.ndarray,
            pane_index: np.ndarray, kind: np.ndarray, wait_ms: np.ndarray, talk_ms: np.ndarray,
            hold_ms: np.ndarray, acw_ms: np.ndarray, threshold_ms: np.ndarray,
            short_ms: np.ndarray) -> None:
        """``queues[group[i]]`` is row i's queue (an object with a ``minutes`` dict); rows with
        ``pane_index < 0`` were not applied and are left out."""
        applied = pane_index >= 0
        if not applied.any():
            return
        minute = ts_ms // MINUTE_MS
        combo = (group.astype(np.int64) << 32) | (minute & 0xFFFFFFFF)
        combos, inverse = np.unique(combo[applied], return_inverse=True)
        rows = np.full(group.size, -1, dtype=np.int64)
        rows[applied] = inverse
        # Counters by the same kernel as interval panes; its sketches are one bucket wide
        # (unused): the waits go to sparse sketches directly.
        scratch = PaneState.empty(combos.size, _COUNTERS_ONLY)
        aggregate(scratch, rows, kind, wait_ms, talk_ms, hold_ms, acw_ms, threshold_ms, short_ms)
        answered = applied & (kind == EventKind.ANSWERED) & (wait_ms >= 0)
        pos, counts, bounds = sparse_groups_flat(self.spec, rows[answered], wait_ms[answered],
                                                 combos.size)
        # New panes keep rows of this copy (views: one allocation, not one per pane).
        records = scratch.records[:, :_N_FIELDS].copy()
        for r, value in enumerate(combos.tolist()):
            q = queues[value >> 32]
            start = (value & 0xFFFFFFFF) * MINUTE_MS
            sketch = (pos[bounds[r]:bounds[r + 1]], counts[bounds[r]:bounds[r + 1]])
            pane = q.minutes.get(start)
            if pane is None:
                q.minutes[start] = MinutePane(records[r], sketch)
            else:
                pane.add(records[r], sketch)


def oldest_kept(now_ms: int) -> int:
    """The start of the oldest minute pane kept at clock ``now_ms``."""
    return now_ms - now_ms % MINUTE_MS - (KEEP_MINUTES - 1) * MINUTE_MS


def expire(minutes: dict[int, MinutePane], now_ms: int) -> bool:
    """Forget panes that left the longest window; whether there were any."""
    oldest = oldest_kept(now_ms)
    if not minutes or min(minutes) >= oldest:  # called per queue and flush: look first
        return False
    for start in [s for s in minutes if s < oldest]:
        del minutes[start]
    return True


def realtime_records(queues: Iterable[Any], now_ms: int, spec: SketchSpec,
                     emitted_at_ms: int, waiting: dict[str, tuple[int, int]]
                     ) -> list[dict[str, Any]]:
    """Snapshot records (``slo.queue-realtime.v1``) of ``queues`` at clock ``now_ms``.

    Each queue object has ``key``, ``tenant``, ``queue``, ``policy``, ``minutes`` and
    ``agents`` (agent id -> (state, since_ms)); ``waiting[key]`` is the number of its calls
    queued by ``now_ms`` and still open, and the earliest of their queue times.

    One pass in Python collects each window's panes; sums, maxima, quantiles and metrics are
    then computed for all windows at once (a queue's record cost ~37 us with per-window numpy
    calls, most of it call overhead on arrays of a few panes)."""
    queues = list(queues)
    n = len(queues)
    current = now_ms - now_ms % MINUTE_MS
    firsts = [current - (minutes - 1) * MINUTE_MS for minutes, _ in WINDOWS]
    # Per window: its panes' records and the window number of each (window k = queue i,
    # window j is k = i * len(WINDOWS) + j, so each window's panes are contiguous).
    pane_records: list[np.ndarray] = []
    window_of: list[int] = []
    groups: list[list[SparseSketch]] = []
    for i, q in enumerate(queues):
        expire(q.minutes, now_ms)
        for j, first in enumerate(firsts):
            k = i * len(WINDOWS) + j
            sketches = []
            for start, pane in q.minutes.items():
                if first <= start <= current:
                    pane_records.append(pane.record)
                    window_of.append(k)
                    sketches.append(pane.sketch)
            groups.append(sketches)
    sums = np.zeros((n * len(WINDOWS), _N_FIELDS), dtype=np.int64)
    sums[:, _MAX_WAIT] = -1
    if pane_records:
        stacked = np.stack(pane_records)
        windows = np.asarray(window_of, dtype=np.int64)
        used = np.flatnonzero(np.bincount(windows, minlength=sums.shape[0]))
        firsts_of_used = np.searchsorted(windows, used)
        sums[used] = np.add.reduceat(stacked, firsts_of_used, axis=0)
        sums[used, _MAX_WAIT] = np.maximum(
            np.maximum.reduceat(stacked[:, _MAX_WAIT], firsts_of_used), -1)
    p90, known = (sparse_group_summary(spec, groups, [0.9]) if groups
                  else (np.zeros((0, 1)), np.zeros(0, dtype=np.int64)))
    policies = [q.policy for q in queues]
    columns: dict[str, list[Any]] = {
        "tenant": [q.tenant for q in queues],
        "queue": [q.queue for q in queues],
        "as_of_ms": [now_ms] * n,
        "emitted_at_ms": [emitted_at_ms] * n,
        "threshold_s": [p.threshold_s for p in policies],
        "sl_formula": [p.sl_formula for p in policies],
        "sl_target": [p.sl_target for p in policies],
    }
    calls_waiting, oldest_wait, agents, staffed = [], [], [], []
    for q in queues:
        count, oldest = waiting.get(q.key, (0, 0))
        calls_waiting.append(count)
        oldest_wait.append((now_ms - oldest) / 1000.0 if count else None)
        states: dict[str, int] = {"available": 0, "on_call": 0, "wrapup": 0, "away": 0}
        for state, _ in q.agents.values():
            states[state] = states.get(state, 0) + 1
        agents.append(states)
        staffed.append(sum(states.values()))
    columns.update(calls_waiting=calls_waiting, oldest_wait_s=oldest_wait, agents=agents,
                   staffed=staffed)
    for j, (_, prefix) in enumerate(WINDOWS):
        rows = slice(j, None, len(WINDOWS))
        for name, column in window_columns(sums[rows], known[rows], policies).items():
            columns[f"{prefix}_{name}"] = column
        columns[f"{prefix}_wait_p90_s"] = wait_column(p90[rows, 0])
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]


def minutes_to_json(minutes: dict[int, MinutePane]) -> list[orjson.Fragment]:
    """The panes of one queue for the changelog shard: each ``[start, record, bucket
    positions, counts]``, as JSON fragments for ``orjson.dumps``."""
    return [pane.encoded(start) for start, pane in sorted(minutes.items())]


def minutes_from_json(items: list[list[Any]]) -> dict[int, MinutePane]:
    return {start: MinutePane(np.asarray(record, dtype=np.int64),
                              (np.asarray(pos, dtype=np.int64), np.asarray(counts, dtype=np.int64)))
            for start, record, pos, counts in items}
