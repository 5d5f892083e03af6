"""Replay: the engine over a file of events, without Kafka.

Lines are read in file order as arrival order, routed to the partition Kafka's default
partitioner would give their key (murmur2, ``topics.partitions`` partitions), condensed by
stage 1's :class:`Condenser` (same validation, same dead-letter reasons) and applied by the
same :class:`~streams.engine.PartitionEngine` the worker runs; at the end every open interval
is closed. The routing matters only for idle queues, which close on their partition's clock:
with it, a worker fed the same events gives the same final interval records.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Iterator

import orjson

from streams.agentstate import updates_by_partition
from streams.contract import Decoder, event_key
from streams.engine import PartitionEngine
from streams.ingest import Condenser, DeadLetter
from streams.settings import Settings
from streams.slo.fcr import FcrState
from streams.topics import key_partition

__all__ = ["ReplayResult", "replay_lines", "record_sort_key"]

_BATCH_LINES = 10_000


@dataclass
class ReplayResult:
    records: list[dict[str, Any]]
    dead_letters: list[DeadLetter] = field(default_factory=list)
    late: list[Any] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    #: First-contact resolution (``slo.queue-fcr.v1``), sorted like ``records``.
    fcr_records: list[dict[str, Any]] = field(default_factory=list)


def record_sort_key(record: dict[str, Any]) -> tuple[str, str, int]:
    return record["tenant"], record["queue"], record["interval_start_ms"]


def partition_of(line: bytes, partitions: int) -> int:
    """The partition a producer keying by :func:`~streams.contract.event_key` would choose
    (Kafka's default partitioner); lines without a computable key go to partition 0."""
    try:
        event = orjson.loads(line)
        key = event_key({"tenant": "default", **event})
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return 0
    return key_partition(key.encode(), partitions)


def _batches(lines: Iterable[bytes], partitions: int
             ) -> Iterator[tuple[int, list[tuple[int, bytes | None, bytes]]]]:
    pending: dict[int, list[tuple[int, bytes | None, bytes]]] = {}
    for number, line in enumerate(lines, start=1):
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        partition = partition_of(line, partitions)
        batch = pending.setdefault(partition, [])
        batch.append((number, None, line))  # the line number stands in for the offset
        if len(batch) >= _BATCH_LINES:
            yield partition, batch
            pending[partition] = []
    for partition, batch in sorted(pending.items()):
        if batch:
            yield partition, batch


def replay_lines(lines: Iterable[bytes], settings: Settings,
                 now_ms: int | None = None) -> ReplayResult:
    """Run both stages over JSON lines; records sorted by (tenant, queue, interval start)."""
    decoder = Decoder.from_settings(settings.ingest, check_key=False)
    condenser = Condenser(decoder, "replay")
    partitions = settings.topics.partitions
    engines = [PartitionEngine(p, settings.engine, settings.queues) for p in range(partitions)]
    result = ReplayResult(records=[])
    # The verdicts depend only on the set of contacts, not on their order or routing: one
    # state for every tenant, judged at the end, gives what the worker's stage publishes.
    fcr = FcrState(window_s=settings.slo.fcr_window_s, interval_s=settings.engine.interval_s,
                   source_partitions=partitions)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    for partition, messages in _batches(lines, partitions):
        batch, dead = condenser.condense(partition, messages, now)
        result.dead_letters.extend(dead)
        result.counts["lines"] += len(messages)
        if batch is not None:
            step = engines[partition].apply(batch)
            for target, updates in updates_by_partition(step.agent_updates,
                                                        partitions).items():
                engines[target].apply_agent_updates(updates)
            result.records.extend(step.records)
            result.late.extend(step.late)
            for contact in step.contacts:
                fcr.add(contact)
    for engine in engines:
        result.records.extend(engine.close_all().records)
        result.counts.update(engine.counts)
    result.counts["dead_lettered"] = len(result.dead_letters)
    result.records.sort(key=record_sort_key)
    result.fcr_records = sorted(fcr.finish(), key=record_sort_key)
    result.counts.update({f"fcr_{name}": n for name, n in fcr.counts.items()})
    return result


def write_records(records: Iterable[dict[str, Any]], out: IO[bytes]) -> None:
    for record in records:
        out.write(orjson.dumps(record) + b"\n")
