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
from kernels import sparse_group_quantiles
from kernels.sparse import SparseSketch, sparse_groups_flat
from streams.records import window_fields

__all__ = ["MINUTE_MS", "WINDOWS", "MinutePane", "MinuteAggregator", "realtime_records",
           "minutes_to_json", "minutes_from_json"]

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


def expire(minutes: dict[int, MinutePane], now_ms: int) -> None:
    """Forget panes that left the longest window."""
    oldest = now_ms - now_ms % MINUTE_MS - (KEEP_MINUTES - 1) * MINUTE_MS
    for start in [s for s in minutes if s < oldest]:
        del minutes[start]


def realtime_records(queues: Iterable[Any], now_ms: int, spec: SketchSpec,
                     emitted_at_ms: int, waiting: dict[str, tuple[int, int]]
                     ) -> list[dict[str, Any]]:
    """Snapshot records (``slo.queue-realtime.v1``) of ``queues`` at clock ``now_ms``.

    Each queue object has ``key``, ``tenant``, ``queue``, ``policy``, ``minutes`` and
    ``agents`` (agent id -> (state, since_ms)); ``waiting[key]`` is the number of its calls
    queued by ``now_ms`` and still open, and the earliest of their queue times."""
    queues = list(queues)
    current = now_ms - now_ms % MINUTE_MS
    sums: list[np.ndarray] = []
    known: list[int] = []
    groups: list[list[SparseSketch]] = []
    for q in queues:
        expire(q.minutes, now_ms)
        for minutes, _ in WINDOWS:
            first = current - (minutes - 1) * MINUTE_MS
            panes = [p for s, p in q.minutes.items() if first <= s <= current]
            total = np.zeros(_N_FIELDS, dtype=np.int64)
            max_wait = -1
            for pane in panes:
                total += pane.record
                max_wait = max(max_wait, int(pane.record[_MAX_WAIT]))
            total[_MAX_WAIT] = max_wait
            sums.append(total)
            known.append(sum(int(pane.sketch[1].sum()) for pane in panes))
            groups.append([pane.sketch for pane in panes])
    p90 = sparse_group_quantiles(spec, groups, [0.9])[:, 0] if groups else np.zeros(0)
    out = []
    for i, q in enumerate(queues):
        calls_waiting, oldest = waiting.get(q.key, (0, 0))
        states: dict[str, int] = {"available": 0, "on_call": 0, "wrapup": 0, "away": 0}
        for state, _ in q.agents.values():
            states[state] = states.get(state, 0) + 1
        record: dict[str, Any] = {
            "tenant": q.tenant,
            "queue": q.queue,
            "as_of_ms": now_ms,
            "emitted_at_ms": emitted_at_ms,
            "threshold_s": q.policy.threshold_s,
            "sl_formula": q.policy.sl_formula,
            "sl_target": q.policy.sl_target,
            "calls_waiting": calls_waiting,
            "oldest_wait_s": (now_ms - oldest) / 1000.0 if calls_waiting else None,
            "agents": states,
            "staffed": sum(states.values()),
        }
        for j, (_, prefix) in enumerate(WINDOWS):
            k = i * len(WINDOWS) + j
            for name, value in window_fields(sums[k].tolist(), known[k], q.policy).items():
                record[f"{prefix}_{name}"] = value
            value = float(p90[k])
            record[f"{prefix}_wait_p90_s"] = None if value != value else value / 1000.0
        out.append(record)
    return out


def minutes_to_json(minutes: dict[int, MinutePane]) -> list[orjson.Fragment]:
    """The panes of one queue for the changelog shard: each ``[start, record, bucket
    positions, counts]``, as JSON fragments for ``orjson.dumps``."""
    return [pane.encoded(start) for start, pane in sorted(minutes.items())]


def minutes_from_json(items: list[list[Any]]) -> dict[int, MinutePane]:
    return {start: MinutePane(np.asarray(record, dtype=np.int64),
                              (np.asarray(pos, dtype=np.int64), np.asarray(counts, dtype=np.int64)))
            for start, record, pos, counts in items}
