"""Agents in stage 2: each agent's last state and queues, and the per-queue updates fanned out.

``agent.state`` events are keyed per agent, so they reach the engine of the agent's partition,
not those of the agent's queues. That engine keeps the agent's state and queue list and turns
every change into :class:`AgentUpdate` s, one per queue concerned; the worker sends them to the
internal batch topic, on the partition of each queue (the partition its call events use), so
the engine that owns the queue applies them inside its own stream, state and changelog.

Updates are idempotent and ordered by event time (a later ``ts_ms`` wins), so sending them
again after a crash changes nothing. ``logged_out`` removes the agent from a queue, and so
does an event whose ``queues`` list no longer names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import orjson

from streams.columns import CODE_TABLES, ColumnBatch
from streams.errors import BatchFormatError
from streams.topics import key_partition

__all__ = ["AgentUpdate", "AgentRegistry", "UPDATE_MAGIC", "encode_updates", "decode_updates",
           "apply_update", "updates_by_partition", "LOGGED_OUT"]

UPDATE_MAGIC = b"CSAU"
LOGGED_OUT = "logged_out"
_STATE_NAMES = CODE_TABLES["agent.state"][1]


@dataclass(frozen=True, slots=True)
class AgentUpdate:
    """Agent ``agent_id`` is in ``state`` for queue ``queue_key`` (``<tenant>/<queue>``)."""

    queue_key: str
    agent_id: str
    state: str
    ts_ms: int


class _Agent:
    __slots__ = ("key", "agent_id", "shard", "state", "queues", "ts_ms", "applied_offset")

    def __init__(self, key: str, agent_id: str, shard: int) -> None:
        self.key = key
        self.agent_id = agent_id
        self.shard = shard
        self.state = LOGGED_OUT
        self.queues: tuple[str, ...] = ()
        self.ts_ms = -(2**62)
        self.applied_offset = -1


class AgentRegistry:
    """The agents whose ``agent.state`` events arrive on one partition."""

    def __init__(self, shard_of: Any) -> None:
        self._shard_of = shard_of
        self.agents: dict[str, _Agent] = {}

    def apply_rows(self, batch: ColumnBatch, rows: Iterable[int], counts: Any
                   ) -> tuple[list[AgentUpdate], set[int]]:
        """Apply the ``agent.state`` rows of ``batch``; returns the updates to fan out and the
        shards whose agents changed."""
        a = batch.arrays
        updates: list[AgentUpdate] = []
        dirty: set[int] = set()
        for i in rows:
            key = batch.groups[int(a["group"][i])]
            agent = self.agents.get(key)
            if agent is None:
                agent = self.agents[key] = _Agent(key, batch.strings["agent_id"][i],
                                                  self._shard_of(key))
            offset = int(a["offset"][i])
            if offset <= agent.applied_offset:
                counts["redelivered"] += 1
                continue
            agent.applied_offset = offset
            dirty.add(agent.shard)
            counts["agent_events"] += 1
            ts = int(a["ts_ms"][i])
            if ts < agent.ts_ms:
                counts["agent_events_stale"] += 1
                continue
            state = _STATE_NAMES[int(a["code"][i])]
            listed = batch.agent_queues[i]
            queues = agent.queues if listed is None else tuple(dict.fromkeys(listed))
            tenant = key.partition("/")[0]
            serving = set() if state == LOGGED_OUT else set(queues)
            for queue in dict.fromkeys(agent.queues + queues):
                updates.append(AgentUpdate(f"{tenant}/{queue}", agent.agent_id,
                                           state if queue in serving else LOGGED_OUT, ts))
            agent.state, agent.queues, agent.ts_ms = state, queues, ts
        return updates, dirty

    def to_json(self, shard: int) -> list[list[Any]]:
        return [[a.key, a.agent_id, a.state, list(a.queues), a.ts_ms, a.applied_offset]
                for a in self.agents.values() if a.shard == shard]

    def load_json(self, items: list[list[Any]]) -> None:
        for key, agent_id, state, queues, ts_ms, applied_offset in items:
            agent = self.agents[key] = _Agent(key, agent_id, self._shard_of(key))
            agent.state, agent.queues, agent.ts_ms = state, tuple(queues), ts_ms
            agent.applied_offset = applied_offset


def apply_update(agents: dict[str, tuple[str, int]], update: AgentUpdate) -> bool:
    """Apply one update to a queue's agent map (agent id -> (state, since ts)); False when an
    update with a later time was already applied."""
    current = agents.get(update.agent_id)
    if current is not None and current[1] > update.ts_ms:
        return False
    if update.state == LOGGED_OUT:
        agents.pop(update.agent_id, None)
    elif current is None or current[0] != update.state:
        agents[update.agent_id] = (update.state, update.ts_ms)
    return True


def encode_updates(updates: Iterable[AgentUpdate]) -> bytes:
    """One internal-topic message holding updates for the queues of one partition."""
    return UPDATE_MAGIC + orjson.dumps([[u.queue_key, u.agent_id, u.state, u.ts_ms]
                                        for u in updates])


def decode_updates(value: bytes) -> list[AgentUpdate]:
    if value[:4] != UPDATE_MAGIC:
        raise BatchFormatError("not a callslo agent-update message (bad magic)")
    try:
        return [AgentUpdate(str(q), str(a), str(s), int(t))
                for q, a, s, t in orjson.loads(value[4:])]
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise BatchFormatError(f"damaged agent-update message: {exc}") from exc


def updates_by_partition(updates: Iterable[AgentUpdate], partitions: int
                         ) -> dict[int, list[AgentUpdate]]:
    """Updates grouped by the partition their queue's call events use."""
    grouped: dict[int, list[AgentUpdate]] = {}
    for update in updates:
        grouped.setdefault(key_partition(update.queue_key.encode(), partitions),
                           []).append(update)
    return grouped
