"""Which rows of a column batch count, and where: the per-row rules of stage 2 in one pass.

For each call-event row, in arrival order, :func:`admit` decides what the engine
(``streams/engine.py``, where the rules are described) does with it:

- ``REDELIVERED``: its source offset is at or below its queue's last applied offset (a batch
  read again after a restart); its id still counts for duplicates;
- ``DUPLICATE``: its event id was seen in an interval that is still open;
- ``LATE``: its interval ended at or before the horizon: the queue's watermark, its last
  close, or the partition clock's idle horizon, whichever is latest;
- ``APPLIED``: it counts in the interval starting at ``start[i]``; a ``call.queued`` opens
  the call, an outcome closes it and, without ``wait_ms``, gets its wait from it;
- ``SKIPPED``: an agent row (``queue[i] < 0``).

State lives in arrays the caller keeps: per queue ``max_ts``, ``closed_before`` and
``applied_offset``; event ids, open calls and calls finished before their ``call.queued``
in three :class:`~kernels.spanmap.SpanMap` (owner = queue index). Ids and finished calls
older than their queue's ``closed_before`` are stale (counted as absent, dropped when a map
is rebuilt), as the engine forgets them when an interval closes. Times are epoch ms; every
interval is aligned to ``interval_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._jit import data_pointer, jit
from .aggregate import EventKind
from .spanmap import (NO_OWNER_THRESHOLD, SpanMap, delete_at, find, insert_at, key_hash,
                      pointers)

__all__ = ["APPLIED", "REDELIVERED", "DUPLICATE", "LATE", "SKIPPED", "Admitted", "admit",
           "remember"]

APPLIED = 0
REDELIVERED = 1
DUPLICATE = 2
LATE = 3
SKIPPED = 4
_QUEUED = int(EventKind.QUEUED)
_ANSWERED = int(EventKind.ANSWERED)
_DEQUEUED = int(EventKind.DEQUEUED)


@dataclass(frozen=True, slots=True)
class Admitted:
    """Per row: ``status``, the interval ``start`` (applied and late rows) and the ``horizon``
    a late row missed; ``partition_max_ts`` after the batch; ``counts`` of redelivered,
    duplicate, late, applied rows and open calls expired on the way; ``touched`` queues."""

    status: np.ndarray
    start: np.ndarray
    horizon: np.ndarray
    partition_max_ts: int
    redelivered: int
    duplicates: int
    late: int
    applied: int
    expired: int
    touched: np.ndarray


def admit(queue: np.ndarray, kind: np.ndarray, ts_ms: np.ndarray, offset: np.ndarray,
          wait_ms: np.ndarray, ids: tuple[np.ndarray, np.ndarray],
          calls: tuple[np.ndarray, np.ndarray], max_ts: np.ndarray, closed_before: np.ndarray,
          applied_offset: np.ndarray, partition_max_ts: int, seen: SpanMap, open_calls: SpanMap,
          finished: SpanMap, *, interval_ms: int, lateness_ms: int, idle_ms: int,
          open_call_ttl_ms: int) -> Admitted:
    """Decide every row (see the module docstring). ``wait_ms`` is filled in place for
    outcomes whose wait comes from their open call. ``ids`` and ``calls`` are string columns
    as ``(bytes as uint8, offsets)`` (row ``i`` is ``bytes[offsets[i]:offsets[i + 1]]``).
    The per-queue arrays and the maps are updated in place."""
    n = queue.size
    for name, column in (("kind", kind), ("ts_ms", ts_ms), ("offset", offset),
                         ("wait_ms", wait_ms)):
        if column.shape != (n,):
            raise ValueError(f"{name} must have one entry per row")
    for name, (_, offsets) in (("ids", ids), ("calls", calls)):
        if offsets.shape != (n + 1,):
            raise ValueError(f"{name} offsets must have one more entry than the rows")
    if n and queue.max() >= max_ts.size:
        raise ValueError("a row names a queue beyond the per-queue arrays")
    if not (closed_before.size == applied_offset.size == max_ts.size):
        raise ValueError("the per-queue arrays must have the same length")
    if wait_ms.dtype != np.int64 or not wait_ms.flags.c_contiguous:
        raise TypeError("wait_ms must be a contiguous int64 array (it is filled in place)")
    id_bytes = int(ids[1][-1] - ids[1][0]) if n else 0
    call_bytes = int(calls[1][-1] - calls[1][0]) if n else 0
    seen.reserve(n, id_bytes, closed_before)
    open_calls.reserve(n, call_bytes)
    finished.reserve(n, call_bytes, closed_before)
    status = np.empty(n, dtype=np.int8)
    start = np.zeros(n, dtype=np.int64)
    horizon = np.zeros(n, dtype=np.int64)
    touched = np.zeros(max_ts.size, dtype=np.bool_)
    settings = np.asarray([interval_ms, lateness_ms, idle_ms, open_call_ttl_ms], dtype=np.int64)
    out = np.zeros(6, dtype=np.int64)
    out[0] = partition_max_ts
    _admit(np.ascontiguousarray(queue, dtype=np.int64), np.ascontiguousarray(kind, dtype=np.int64),
           np.ascontiguousarray(ts_ms, dtype=np.int64),
           np.ascontiguousarray(offset, dtype=np.int64), wait_ms, ids[0],
           np.ascontiguousarray(ids[1], dtype=np.int64), calls[0],
           np.ascontiguousarray(calls[1], dtype=np.int64), max_ts, closed_before,
           applied_offset, seen.parts, open_calls.parts, finished.parts, settings, status, start,
           horizon, touched, out)
    return Admitted(status, start, horizon, int(out[0]), int(out[1]), int(out[2]),
                    int(out[3]), int(out[4]), int(out[5]), touched)


@jit
def _floor(value, step):
    return value - value % step


@jit
def _admit(queue, kind, ts_ms, offset, wait_ms, id_buf, id_offsets, call_buf, call_offsets,
           max_ts, closed_before, applied_offset, seen, open_calls, finished, settings, status,
           start_out, horizon_out, touched, out):
    interval_ms, lateness_ms, idle_ms, ttl_ms = settings[0], settings[1], settings[2], settings[3]
    # Pointers, not arrays, for the per-row helpers (see kernels.spanmap).
    seen_values, open_values, finished_values = seen[3], open_calls[3], finished[3]
    seen, open_calls, finished = pointers(seen), pointers(open_calls), pointers(finished)
    id_buf, call_buf = data_pointer(id_buf), data_pointer(call_buf)
    partition_max = out[0]
    idle_horizon = _floor(partition_max - idle_ms, interval_ms)
    redelivered = duplicates = late = applied = expired = 0
    for i in range(queue.size):
        q = queue[i]
        if q < 0:
            status[i] = 4  # SKIPPED
            continue
        ts = ts_ms[i]
        id_s, id_e = id_offsets[i], id_offsets[i + 1]
        id_hash = key_hash(q, id_buf, id_s, id_e)
        if offset[i] <= applied_offset[q]:
            # Applied before a restart: its id must still count for duplicates.
            redelivered += 1
            status[i] = 1  # REDELIVERED
            if ts >= closed_before[q]:
                slot, x = find(seen, q, id_hash, id_buf, id_s, id_e)
                if x < 0:
                    insert_at(seen, slot, q, id_hash, id_buf, id_s, id_e, ts)
                elif seen_values[x] < closed_before[q]:
                    seen_values[x] = ts
            continue
        applied_offset[q] = offset[i]
        touched[q] = True
        start = _floor(ts, interval_ms)
        # The horizon before this row: the queue's watermark, its last close or the
        # partition clock's idle horizon, whichever is latest.
        horizon = _floor(max_ts[q] - lateness_ms, interval_ms)
        if closed_before[q] > horizon:
            horizon = closed_before[q]
        if idle_horizon > horizon:
            horizon = idle_horizon
        slot, x = find(seen, q, id_hash, id_buf, id_s, id_e)
        if x >= 0 and seen_values[x] >= closed_before[q] and seen_values[x] >= horizon:
            duplicates += 1
            status[i] = 2  # DUPLICATE
            continue
        if ts > max_ts[q]:
            max_ts[q] = ts
            if ts > partition_max:
                partition_max = ts
                idle_horizon = _floor(ts - idle_ms, interval_ms)
        if start + interval_ms <= horizon:
            late += 1
            status[i] = 3  # LATE
            start_out[i] = start
            horizon_out[i] = horizon
            continue
        if x >= 0:
            seen_values[x] = ts
        else:
            insert_at(seen, slot, q, id_hash, id_buf, id_s, id_e, ts)
        k = kind[i]
        if k == _QUEUED or (_ANSWERED <= k <= _DEQUEUED):
            c_s, c_e = call_offsets[i], call_offsets[i + 1]
            c_hash = key_hash(q, call_buf, c_s, c_e)
            if k == _QUEUED:
                # Disorder may bring the outcome first: then the call is not waiting.
                f_slot, f = find(finished, q, c_hash, call_buf, c_s, c_e)
                ended = NO_OWNER_THRESHOLD
                if f >= 0:
                    if finished_values[f] >= closed_before[q]:
                        ended = finished_values[f]
                    delete_at(finished, f_slot, f)
                if ended == NO_OWNER_THRESHOLD or ts > ended:
                    o_slot, o = find(open_calls, q, c_hash, call_buf, c_s, c_e)
                    if o >= 0:
                        open_values[o] = ts
                    else:
                        insert_at(open_calls, o_slot, q, c_hash, call_buf, c_s, c_e, ts)
            else:
                o_slot, o = find(open_calls, q, c_hash, call_buf, c_s, c_e)
                queued_at = NO_OWNER_THRESHOLD
                if o >= 0:
                    queued_at = open_values[o]
                    delete_at(open_calls, o_slot, o)
                else:
                    f_slot, f = find(finished, q, c_hash, call_buf, c_s, c_e)
                    if f >= 0:
                        finished_values[f] = ts
                    else:
                        insert_at(finished, f_slot, q, c_hash, call_buf, c_s, c_e, ts)
                if queued_at != NO_OWNER_THRESHOLD and queued_at < max_ts[q] - ttl_ms:
                    # Forgotten whatever the batch boundaries: the sweep's rule.
                    expired += 1
                    queued_at = NO_OWNER_THRESHOLD
                if wait_ms[i] < 0 and queued_at != NO_OWNER_THRESHOLD:
                    wait_ms[i] = max(0, ts - queued_at)
        status[i] = 0  # APPLIED
        start_out[i] = start
        applied += 1
    out[0] = partition_max
    out[1] = redelivered
    out[2] = duplicates
    out[3] = late
    out[4] = applied
    out[5] = expired


def remember(queue: np.ndarray, ts_ms: np.ndarray, offset: np.ndarray,
             ids: tuple[np.ndarray, np.ndarray], applied_offset: np.ndarray,
             closed_before: np.ndarray, seen: SpanMap) -> None:
    """Take the ids of an already applied batch back into ``seen`` (recovery): rows at or
    below their queue's applied offset, in intervals still open (``ts >= closed_before``)."""
    n = queue.size
    if ids[1].shape != (n + 1,) or ts_ms.shape != (n,) or offset.shape != (n,):
        raise ValueError("the columns must have one entry per row")
    if n and queue.max() >= applied_offset.size:
        raise ValueError("a row names a queue beyond the per-queue arrays")
    seen.reserve(n, int(ids[1][-1] - ids[1][0]) if n else 0, closed_before)
    _remember(np.ascontiguousarray(queue, dtype=np.int64),
              np.ascontiguousarray(ts_ms, dtype=np.int64),
              np.ascontiguousarray(offset, dtype=np.int64), ids[0],
              np.ascontiguousarray(ids[1], dtype=np.int64), applied_offset, closed_before,
              seen.parts)


@jit
def _remember(queue, ts_ms, offset, id_buf, id_offsets, applied_offset, closed_before, seen):
    seen_values = seen[3]
    seen = pointers(seen)
    id_buf = data_pointer(id_buf)
    for i in range(queue.size):
        q = queue[i]
        if q < 0 or offset[i] > applied_offset[q] or ts_ms[i] < closed_before[q]:
            continue
        s, e = id_offsets[i], id_offsets[i + 1]
        h = key_hash(q, id_buf, s, e)
        slot, x = find(seen, q, h, id_buf, s, e)
        if x < 0:
            insert_at(seen, slot, q, h, id_buf, s, e, ts_ms[i])
        elif seen_values[x] < closed_before[q]:
            seen_values[x] = ts_ms[i]
