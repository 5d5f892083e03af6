"""How a partition's engine state is written to its changelog shards and read back.

A mixin of :class:`~streams.engine.PartitionEngine`, kept apart from the batch rules: queues
are grouped into ``shards_per_partition`` shards, a shard's value holds every queue of it (its
scalars, open and finished calls, panes and minute panes; not its event ids), and the
partition's *meta* value (last applied batch, clocks, where event ids are read back from) is
written after every shard of a flush was acknowledged (see :mod:`streams.agents.engine`).
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import orjson

from kernels.admission import remember
from streams.columns import KIND_CODES, ColumnBatch
from streams.queuestate import NO_TIME as _NO_TIME
from streams.queuestate import QueueState, decode_meta, decode_shard, encode_meta, encode_shard
from streams.realtime import expire as expire_minutes
from streams.realtime import oldest_kept

if TYPE_CHECKING:
    from kernels import PaneState
    from streams.agentstate import AgentRegistry
    from streams.queuestate import QueueTable

__all__ = ["ChangelogShards", "span_column"]

_AGENT_KIND = KIND_CODES["agent.state"]


class ChangelogShards:
    """The changelog form of a :class:`~streams.engine.PartitionEngine` (a mixin: it reads
    and restores the engine's own fields)."""

    partition: int
    interval_ms: int
    batch_offset: int
    restore_ids_from: int
    max_ts_ms: int
    clock_ms: int
    queues: dict[str, QueueState]
    table: "QueueTable"
    panes: "PaneState"
    agent_registry: "AgentRegistry"
    _id_batches: deque[tuple[int, int]]
    _pane_ends: list[tuple[int, str]]
    _shard_queues: dict[int, list[QueueState]]
    _shard_oldest_minute: dict[int, int]
    _free_rows: list[int]

    def _queue(self, key: str) -> QueueState:
        raise NotImplementedError

    def _allocate_row(self) -> int:
        raise NotImplementedError

    def mark_batch(self, offset: int, batch: ColumnBatch | None) -> None:
        """Record that the internal-topic message at ``offset`` was applied."""
        self.batch_offset = offset
        if batch is not None and batch.rows:
            self._id_batches.append((offset, int(batch.arrays["ts_ms"].max())))

    def ids_from_offset(self) -> int:
        """The first internal-topic offset whose batch may hold an id of an open interval."""
        oldest_open = self._pane_ends[0][0] - self.interval_ms if self._pane_ends else None
        marks = self._id_batches
        while marks and (oldest_open is None or marks[0][1] < oldest_open):
            marks.popleft()
        return marks[0][0] if marks else self.batch_offset + 1

    def remember_ids(self, offset: int, batch: ColumnBatch) -> None:
        """Take the ids of an already applied batch back into ``seen`` (recovery): rows at or
        below their queue's applied offset, in intervals still open."""
        a = batch.arrays
        queues = [self.queues.get(key) if key.count("/") < 2 else None for key in batch.groups]
        group_index = np.asarray([-1 if q is None else q.index for q in queues], dtype=np.int64)
        if batch.rows:
            queue_of_row = group_index[a["group"]]
            queue_of_row[a["kind"] == _AGENT_KIND] = -1
            t = self.table
            remember(queue_of_row, a["ts_ms"], a["offset"], span_column(batch.texts["event_id"]),
                     t.applied_offset, t.closed_before, t.seen)
            self._id_batches.append((offset, int(a["ts_ms"].max())))

    def meta_key(self) -> bytes:
        """The table key of the partition's commit marker (see :meth:`meta_value`)."""
        return f"{self.partition}/meta".encode()

    def meta_value(self) -> bytes:
        """The partition's clocks and last applied batch, written after every shard of a
        flush was acknowledged: what a restarted engine resumes from. Shards written in a flush
        that did not complete hold newer queues; re-applying their rows is skipped per queue."""
        return encode_meta({"partition": self.partition, "batch_offset": self.batch_offset,
                            "ids_from_offset": self.ids_from_offset(),
                            "partition_max_ts_ms": self.max_ts_ms, "clock_ms": self.clock_ms})

    def load_meta(self, value: bytes) -> None:
        """Take the clocks and batch offset of the marker (after every shard was loaded)."""
        meta = decode_meta(value)
        self.batch_offset = meta["batch_offset"]
        self.restore_ids_from = meta.get("ids_from_offset", self.batch_offset + 1)
        self.max_ts_ms = meta["partition_max_ts_ms"]
        self.clock_ms = meta["clock_ms"]

    def shard_key(self, shard: int) -> bytes:
        """The table key of one shard of this partition."""
        return f"{self.partition}/{shard}".encode()

    def shard_value(self, shard: int) -> bytes:
        """Serialise every queue of ``shard``: its scalars, open calls and panes (not its ids).

        A queue's JSON is kept from the last value until the queue changes (the engine calls
        :meth:`QueueState.changed` wherever its state moves): with many queues most of a
        dirty shard is idle, and encoding every queue of it each flush was a tenth of the
        worker's time with 100 000 queues. The same holds for its panes' part of the
        pane-state block: copying the dense sketches of every pane of the shard out to
        encode them was ~5 us a queue, each flush."""
        now_ms = max(self.max_ts_ms, self.clock_ms)
        queues = self._shard_queues.get(shard, [])
        # A queue unchanged since its last encoding had nothing left to expire then; unless
        # the oldest kept minute moved since this shard's last value, it has none now.
        oldest = oldest_kept(now_ms)
        every_queue = self._shard_oldest_minute.get(shard) != oldest
        self._shard_oldest_minute[shard] = oldest
        for q in queues:
            if (every_queue or q.encoded is None) and expire_minutes(q.minutes, now_ms):
                q.changed()
        stale = [q for q in queues if q.encoded is None]
        if stale:
            open_calls, finished = self.table.calls_of(q.index for q in stale)
            starts = [sorted(q.panes) for q in stale]
            parts = self.panes.encode_rows(np.asarray(
                [q.panes[s] for q, qs in zip(stale, starts) for s in qs], dtype=np.int64))
            at = 0
            for q, qs in zip(stale, starts):
                q.encoded_panes = parts[at:at + len(qs)]
                at += len(qs)
                q.encoded = orjson.Fragment(orjson.dumps(q.to_json(
                    qs, open_calls.get(q.index, []), finished.get(q.index, []))))
        panes = [part for q in queues for part in q.encoded_panes]
        header = {"partition": self.partition, "shard": shard,
                  "partition_max_ts_ms": self.max_ts_ms, "clock_ms": self.clock_ms,
                  "batch_offset": self.batch_offset, "queues": [q.encoded for q in queues],
                  "agents": self.agent_registry.to_json(shard)}
        return encode_shard(header, b"".join([self.panes.bytes_header(len(panes)), *panes]))

    def load_shard(self, value: bytes) -> None:
        """Restore the queues of one shard from :meth:`shard_value` bytes (recovery)."""
        header, panes = decode_shard(value)
        # Every batch that moves the partition clock rewrites at least the shard of the queue
        # that moved it, so the largest value over the shards is the clock of the last batch.
        self.max_ts_ms = max(self.max_ts_ms, header["partition_max_ts_ms"])
        self.batch_offset = max(self.batch_offset, header.get("batch_offset", -1))
        self.clock_ms = max(self.clock_ms, header.get("clock_ms", _NO_TIME))
        self.agent_registry.load_json(header.get("agents", []))
        position = 0
        for item in header["queues"]:
            q = self._queue(item["key"])
            q.restore(item)
            for row in q.panes.values():
                self.panes.reset(np.asarray([row], dtype=np.int64))
                self._free_rows.append(row)
            q.panes = {}
            rows = []
            for start in item["pane_starts"]:
                row = q.panes[start] = self._allocate_row()
                heapq.heappush(self._pane_ends, (start + self.interval_ms, q.key))
                rows.append(row)
            if rows:
                self.panes.put(np.asarray(rows, dtype=np.int64),
                               panes.take(np.arange(position, position + len(rows))))
                position += len(rows)

    def all_shard_values(self) -> Iterable[tuple[int, bytes]]:
        shards = sorted(set(self._shard_queues) | {a.shard for a in
                                                   self.agent_registry.agents.values()})
        return ((s, self.shard_value(s)) for s in shards)



def span_column(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """A string column as the kernels take it: (bytes as uint8, offsets)."""
    return np.frombuffer(column.blob or b"\0", dtype=np.uint8), column.offsets
