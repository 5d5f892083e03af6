"""The state stage 2 keeps per queue, and the changelog shard format that carries it.

Each partition also has a marker value (``CSQM`` + JSON: last applied batch offset and the
partition's clocks), written once every shard of a flush is acknowledged.

A shard value is ``CSQS`` + a 4-byte header length + a JSON header (the partition's clocks,
every queue of the shard with its scalars, open calls, minute panes and agents, the
shard's agents) + the :class:`~kernels.PaneState` bytes of the queues' open interval panes, in
header order. Faust stores it as raw bytes (see :mod:`streams.agents.engine`).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import orjson

from kernels import PaneState
from kernels.spanmap import SpanMap, owner_stats
from streams.errors import BatchFormatError
from streams.realtime import MinutePane, minutes_from_json, minutes_to_json
from streams.settings import QueuePolicy

__all__ = ["QueueState", "QueueTable", "NO_TIME", "encode_shard", "decode_shard",
           "encode_meta", "decode_meta"]

NO_TIME = -(2**62)
_SHARD_MAGIC = b"CSQS"
_META_MAGIC = b"CSQM"
_SHARD_VERSION = 2


class QueueTable:
    """The keyed state of a partition's queues in the form the admission kernel reads:
    per-queue scalars as arrays (indexed by :attr:`QueueState.index`), and the event ids,
    open calls and finished-before-queued calls of every queue in three exact maps
    (:class:`kernels.spanmap.SpanMap`, owner = queue index)."""

    def __init__(self, capacity: int = 64) -> None:
        self.size = 0
        self.max_ts = np.full(capacity, NO_TIME, dtype=np.int64)
        self.closed_before = np.full(capacity, NO_TIME, dtype=np.int64)
        self.applied_offset = np.full(capacity, -1, dtype=np.int64)
        self.seen = SpanMap()
        self.open_calls = SpanMap()
        self.finished = SpanMap()

    def add(self) -> int:
        """A new queue's index."""
        if self.size == self.max_ts.size:
            grow = self.max_ts.size
            self.max_ts = np.concatenate([self.max_ts, np.full(grow, NO_TIME, dtype=np.int64)])
            self.closed_before = np.concatenate(
                [self.closed_before, np.full(grow, NO_TIME, dtype=np.int64)])
            self.applied_offset = np.concatenate(
                [self.applied_offset, np.full(grow, -1, dtype=np.int64)])
        self.size += 1
        return self.size - 1

    def calls_of(self, indexes: Iterable[int]) -> tuple[dict[int, list[list[Any]]],
                                                         dict[int, list[list[Any]]]]:
        """``(open calls, finished calls)`` of the given queues as ``[[call_id, ts], ...]``
        per queue index, finished calls older than the queue's close left out."""
        selected = np.zeros(self.size, dtype=np.bool_)
        selected[list(indexes)] = True
        out: tuple[dict, dict] = ({}, {})
        for kept, table, thresholds in ((out[0], self.open_calls, None),
                                        (out[1], self.finished, self.closed_before)):
            for owner, key, value in table.entries(selected, thresholds):
                kept.setdefault(owner, []).append([key.decode(), value])
        return out

    def waiting(self, now_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """Per queue index: calls queued at or before ``now_ms`` and still open, and the
        earliest of their queue times (``NO_TIME`` ... none: a huge value)."""
        counts = np.zeros(self.size, dtype=np.int64)
        lowest = np.full(self.size, np.iinfo(np.int64).max, dtype=np.int64)
        owner_stats(self.open_calls.parts, now_ms, counts, lowest)
        return counts, lowest


class QueueState:
    """One ``<tenant>/<queue>``: see the field list in :mod:`streams.engine`. Its scalars live
    in the partition's :class:`QueueTable` at :attr:`index`."""

    __slots__ = ("key", "tenant", "queue", "policy", "shard", "table", "index", "panes",
                 "minutes", "agents", "realtime_at_ms", "encoded", "encoded_panes")

    def __init__(self, key: str, policy: QueuePolicy, shard: int, table: QueueTable) -> None:
        self.key = key
        self.tenant, _, self.queue = key.partition("/")
        self.policy = policy
        self.shard = shard
        self.table = table
        self.index = table.add()
        self.panes: dict[int, int] = {}
        self.minutes: dict[int, MinutePane] = {}
        self.agents: dict[str, tuple[str, int]] = {}
        self.realtime_at_ms = NO_TIME
        #: :meth:`to_json` as written to the last shard value; ``None`` once the queue
        #: changed (every change of its state sets it back, see :meth:`changed`).
        self.encoded: orjson.Fragment | None = None
        #: The queue's panes in that value, in start order, each its part of the shard's
        #: pane-state block (``PaneState.encode_rows``); valid while ``encoded`` is.
        self.encoded_panes: list[bytes] = []

    def changed(self) -> None:
        """Forget the cached changelog form: the next shard value encodes the queue anew."""
        self.encoded = None

    @property
    def max_ts_ms(self) -> int:
        return int(self.table.max_ts[self.index])

    @property
    def closed_before_ms(self) -> int:
        return int(self.table.closed_before[self.index])

    @closed_before_ms.setter
    def closed_before_ms(self, value: int) -> None:
        self.table.closed_before[self.index] = value

    @property
    def applied_offset(self) -> int:
        return int(self.table.applied_offset[self.index])

    def to_json(self, pane_starts: list[int], open_calls: list[list[Any]],
                finished_calls: list[list[Any]]) -> dict[str, Any]:
        """Everything but the pane contents (those travel as PaneState bytes)."""
        return {
            "key": self.key, "max_ts_ms": self.max_ts_ms, "closed_before_ms": self.closed_before_ms,
            "applied_offset": self.applied_offset, "open_calls": open_calls,
            "finished_calls": finished_calls, "pane_starts": pane_starts,
            "minutes": minutes_to_json(self.minutes),
            "agents": [[agent, state, ts] for agent, (state, ts) in self.agents.items()],
        }

    def restore(self, item: dict[str, Any]) -> None:
        """Take the scalars, calls, minute panes and agents of :meth:`to_json`."""
        self.encoded = None
        t, i = self.table, self.index
        t.max_ts[i] = item["max_ts_ms"]
        t.closed_before[i] = item["closed_before_ms"]
        t.applied_offset[i] = item["applied_offset"]
        # Ids were written by earlier versions only; now read back from the batch topic.
        for event_id, ts_ms in item.get("seen", ()):
            t.seen.put(i, event_id.encode(), ts_ms)
        for call_id, ts_ms in item["open_calls"]:
            t.open_calls.put(i, call_id.encode(), ts_ms)
        for call_id, ts_ms in item.get("finished_calls", ()):
            t.finished.put(i, call_id.encode(), ts_ms)
        self.minutes = minutes_from_json(item.get("minutes", []))
        self.agents = {agent: (state, ts) for agent, state, ts in item.get("agents", [])}


def encode_shard(header: dict[str, Any], panes: bytes) -> bytes:
    """A shard value: ``header`` and the pane-state block ``panes`` (``PaneState`` bytes)."""
    body = orjson.dumps({"v": _SHARD_VERSION, **header})
    return b"".join([_SHARD_MAGIC, len(body).to_bytes(4, "little"), body, panes])


def decode_shard(value: bytes) -> tuple[dict[str, Any], PaneState]:
    if value[:4] != _SHARD_MAGIC:
        raise BatchFormatError("not a callslo queue-state shard (bad magic)")
    header_len = int.from_bytes(value[4:8], "little")
    try:
        header = orjson.loads(value[8:8 + header_len])
        panes = PaneState.from_bytes(value[8 + header_len:])
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise BatchFormatError(f"damaged queue-state shard: {exc}") from exc
    if header.get("v", 1) > _SHARD_VERSION:
        raise BatchFormatError(f"queue-state shard version {header['v']} is newer than this "
                               f"worker understands ({_SHARD_VERSION}); upgrade the worker")
    return header, panes


def encode_meta(meta: dict[str, Any]) -> bytes:
    return _META_MAGIC + orjson.dumps({"v": 1, **meta})


def decode_meta(value: bytes) -> dict[str, Any]:
    if value[:4] != _META_MAGIC:
        raise BatchFormatError("not a callslo partition marker (bad magic)")
    try:
        return orjson.loads(value[4:])
    except orjson.JSONDecodeError as exc:
        raise BatchFormatError(f"damaged partition marker: {exc}") from exc
