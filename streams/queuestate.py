"""The state stage 2 keeps per queue, and the changelog shard format that carries it.

Each partition also has a marker value (``CSQM`` + JSON: last applied batch offset and the
partition's clocks), written once every shard of a flush is acknowledged.

A shard value is ``CSQS`` + a 4-byte header length + a JSON header (the partition's clocks,
every queue of the shard with its scalars, open calls, minute panes and agents, the
shard's agents) + the :class:`~kernels.PaneState` bytes of the queues' open interval panes, in
header order. Faust stores it as raw bytes (see :mod:`streams.agents.engine`).
"""

from __future__ import annotations

from typing import Any

import orjson

from kernels import PaneState
from streams.errors import BatchFormatError
from streams.realtime import MinutePane, minutes_from_json, minutes_to_json
from streams.settings import QueuePolicy

__all__ = ["QueueState", "NO_TIME", "encode_shard", "decode_shard", "encode_meta",
           "decode_meta"]

NO_TIME = -(2**62)
_SHARD_MAGIC = b"CSQS"
_META_MAGIC = b"CSQM"
_SHARD_VERSION = 2


class QueueState:
    """One ``<tenant>/<queue>``: see the field list in :mod:`streams.engine`."""

    __slots__ = ("key", "tenant", "queue", "policy", "shard", "max_ts_ms", "closed_before_ms",
                 "applied_offset", "seen", "open_calls", "finished_calls", "panes", "minutes",
                 "agents",
                 "realtime_at_ms")

    def __init__(self, key: str, policy: QueuePolicy, shard: int) -> None:
        self.key = key
        self.tenant, _, self.queue = key.partition("/")
        self.policy = policy
        self.shard = shard
        self.max_ts_ms = NO_TIME
        self.closed_before_ms = NO_TIME
        self.applied_offset = -1
        self.seen: dict[str, int] = {}
        self.open_calls: dict[str, int] = {}
        self.finished_calls: dict[str, int] = {}
        self.panes: dict[int, int] = {}
        self.minutes: dict[int, MinutePane] = {}
        self.agents: dict[str, tuple[str, int]] = {}
        self.realtime_at_ms = NO_TIME

    def to_json(self, pane_starts: list[int]) -> dict[str, Any]:
        """Everything but the pane contents (those travel as PaneState bytes)."""
        return {
            "key": self.key, "max_ts_ms": self.max_ts_ms, "closed_before_ms": self.closed_before_ms,
            "applied_offset": self.applied_offset,
            "open_calls": list(self.open_calls.items()),
            "finished_calls": list(self.finished_calls.items()), "pane_starts": pane_starts,
            "minutes": minutes_to_json(self.minutes),
            "agents": [[agent, state, ts] for agent, (state, ts) in self.agents.items()],
        }

    def restore(self, item: dict[str, Any]) -> None:
        """Take the scalars, open calls, minute panes and agents of :meth:`to_json`."""
        self.max_ts_ms = item["max_ts_ms"]
        self.closed_before_ms = item["closed_before_ms"]
        self.applied_offset = item["applied_offset"]
        # Written by earlier versions only; now read back from the batch topic on recovery.
        self.seen = dict(item.get("seen", ()))
        self.open_calls = dict(item["open_calls"])
        self.finished_calls = dict(item.get("finished_calls", ()))
        self.minutes = minutes_from_json(item.get("minutes", []))
        self.agents = {agent: (state, ts) for agent, state, ts in item.get("agents", [])}


def encode_shard(header: dict[str, Any], panes: PaneState) -> bytes:
    body = orjson.dumps({"v": _SHARD_VERSION, **header})
    return b"".join([_SHARD_MAGIC, len(body).to_bytes(4, "little"), body, panes.to_bytes()])


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
