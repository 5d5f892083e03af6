"""SLO evaluation in the worker: the agent that turns interval and realtime records into alerts,
staffing and error-budget records (the logic is :class:`streams.slo.evaluator.SloEvaluator`).

The agent consumes ``topics.intervals`` and ``topics.realtime`` in the worker's consumer group,
so each worker evaluates the queues of the partitions it owns (both topics are keyed
``<tenant>/<queue>`` with the same partition count, and Faust assigns the same partition of
both to one worker). Its state is rebuilt, never stored: the first time a worker sees a
partition (at start, after a rebalance) it reads that partition of the alerts topic to learn
which alerts are firing, and at the first interval message of the partition it reads the
intervals topic from the beginning up to that message without publishing anything. A repeated
record is recognised by (tenant, queue, interval start). A group without committed offsets
starts at the beginning of both topics: records older than ``slo.alerts.stale_after_s`` (plus
one interval) are learned as history without publishing anything. Realtime snapshots are not
replayed: the staffed-agents meter of the interval open at a restart covers only the time
after it (``staffed_coverage`` says how much).

Publishing is at least once: after a crash the same alert, staffing or budget record can be
published again, identical (alerts keep their id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, AsyncIterator

import faust
import orjson
from aiokafka import TopicPartition

from streams import clients
from streams.errors import CallsloError
from streams.settings import Settings
from streams.slo.evaluator import Output, SloEvaluator
from streams.slo.report.load import check_record

__all__ = ["register_slo"]

log = logging.getLogger(__name__)


def register_slo(app: faust.App, settings: Settings) -> dict[str, Any]:
    """Declare the SLO topics and agent on ``app``; returns them by name."""
    t = settings.topics
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}
    inputs = app.topic(t.intervals, t.realtime, **raw)
    outputs = {"alerts": app.topic(t.alerts, **raw), "staffing": app.topic(t.staffing, **raw),
               "budget": app.topic(t.budget, **raw)}
    evaluators: dict[int, SloEvaluator] = {}
    history_loaded: set[int] = set()
    counts: Counter[str] = Counter()
    lock = asyncio.Lock()

    async def evaluator_for(partition: int) -> SloEvaluator:
        evaluator = evaluators.get(partition)
        if evaluator is None:
            evaluator = SloEvaluator(settings.slo, settings.engine.interval_s)
            async for where, value in _read_partition(settings, t.alerts, partition, None):
                try:
                    evaluator.restore_alert(value)
                except (KeyError, TypeError) as exc:
                    log.error("slo: skipped %s while restoring alerts: %s", where, exc)
            evaluators[partition] = evaluator
            log.info("slo: partition %d ready, %d alerts firing", partition,
                     sum(1 for _ in evaluator.alerts.firing()))
        return evaluator

    async def learn_history(evaluator: SloEvaluator, partition: int, upto: int) -> None:
        now_ms = int(time.time() * 1000)
        learned = 0
        async for where, value in _read_partition(settings, t.intervals, partition, upto):
            try:
                evaluator.on_interval(check_record(value, where), now_ms, quiet=True)
                learned += 1
            except CallsloError as exc:
                log.error("slo: skipped %s while learning history: %s", where, exc)
        history_loaded.add(partition)
        log.info("slo: partition %d learned %d interval records before offset %d", partition,
                 learned, upto)

    async def publish(results: list[Output]) -> None:
        delivered = [await outputs[o.role].send(key=o.key.encode(), value=orjson.dumps(o.value))
                     for o in results]
        await asyncio.gather(*delivered)
        counts.update(f"{o.role}_records" for o in results)

    @app.agent(inputs, name="callslo-slo")
    async def evaluate(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            where = f"{message.topic} partition {message.partition} offset {message.offset}"
            async with lock:
                evaluator = await evaluator_for(message.partition)
                now_ms = int(time.time() * 1000)
                try:
                    value = orjson.loads(event.value)
                    if message.topic == t.intervals:
                        if message.partition not in history_loaded:
                            await learn_history(evaluator, message.partition, message.offset)
                        results = evaluator.on_interval(check_record(value, where), now_ms)
                        counts["intervals"] += 1
                    else:
                        results = evaluator.on_realtime(_check_realtime(value, where), now_ms)
                        counts["realtime"] += 1
                except (orjson.JSONDecodeError, CallsloError) as exc:
                    # Our own engine wrote these records; one it cannot read is a bug to see in
                    # the log, not a reason to stop evaluating every other queue.
                    log.error("slo: skipped %s: %s", where, exc)
                    counts["bad_records"] += 1
                    continue
                await publish(results)

    @app.on_partitions_revoked.connect
    async def forget_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        # Rebuilt from the topics on next use, by whichever worker then owns the partition.
        async with lock:
            evaluators.clear()
            history_loaded.clear()

    @app.timer(interval=60.0)
    async def report() -> None:
        if counts:
            log.info("slo: %s", dict(counts))

    return {"agent": evaluate, "evaluators": evaluators, "counts": counts, **outputs}


def _check_realtime(value: Any, where: str) -> dict[str, Any]:
    """A realtime record with the fields the evaluator reads, or an error naming the field."""
    if not isinstance(value, dict):
        raise CallsloError(f"{where}: not a JSON object")
    for name, ok in (("tenant", lambda v: isinstance(v, str)), ("queue", lambda v: isinstance(v, str)),
                     ("as_of_ms", lambda v: type(v) is int),
                     ("sl_target", lambda v: type(v) in (int, float)),
                     ("threshold_s", lambda v: type(v) in (int, float))):
        if name not in value or not ok(value[name]):
            raise CallsloError(f"{where}: field {name!r} is missing or of the wrong type "
                               "(an slo.queue-realtime.v1 record?)")
    return value


async def _read_partition(settings: Settings, topic: str, partition: int, upto: int | None
                          ) -> AsyncIterator[tuple[str, Any]]:
    """``(where, decoded value)`` of every message of one partition from its beginning up to
    offset ``upto`` (exclusive; None: its end now). Undecodable messages are logged, skipped."""
    consumer = clients.consumer(settings.kafka, "slo-rebuild")
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        stop = (await consumer.end_offsets([tp]))[tp]
        if upto is not None:
            stop = min(stop, upto)
        while await consumer.position(tp) < stop:
            for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                if record.offset >= stop:
                    break
                where = f"{topic} partition {partition} offset {record.offset}"
                try:
                    value = orjson.loads(record.value)
                except orjson.JSONDecodeError as exc:
                    log.error("slo: skipped %s: not JSON (%s)", where, exc)
                    continue
                yield where, value
    finally:
        await consumer.stop()
