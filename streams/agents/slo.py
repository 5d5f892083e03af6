"""SLO evaluation in the worker: the agent that turns interval and realtime records into alerts,
staffing and error-budget records (the logic is :class:`streams.slo.evaluator.SloEvaluator`).

The agent consumes ``topics.intervals`` and ``topics.realtime`` in the worker's consumer group,
so each worker evaluates the queues of the partitions it owns (both topics are keyed
``<tenant>/<queue>`` with the same partition count, and Faust assigns the same partition of
both to one worker). Its state is rebuilt, never stored: the first time a worker sees a
partition (at start, after a rebalance) it reads that partition of the intervals topic from the
beginning to its current end without publishing anything, and the same partition of the alerts
topic to learn which alerts are firing. Interval messages below that end are then skipped (they
are in the rebuilt state); a repeated record is recognised by (tenant, queue, interval start).
Realtime snapshots are not replayed: the staffed-agents meter of the interval open at a
restart covers only the time after it (``staffed_coverage`` says how much).

Publishing is at least once: after a crash the same alert, staffing or budget record can be
published again, identical (alerts keep their id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

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
    loaded_end: dict[int, int] = {}
    counts: Counter[str] = Counter()
    lock = asyncio.Lock()

    async def evaluator_for(partition: int) -> SloEvaluator:
        evaluator = evaluators.get(partition)
        if evaluator is None:
            evaluator = SloEvaluator(settings.slo, settings.engine.interval_s)
            loaded_end[partition] = await _rebuild(settings, evaluator, partition)
            evaluators[partition] = evaluator
            log.info("slo: partition %d ready, %d queues, %d alerts firing", partition,
                     len(evaluator.history), sum(1 for _ in evaluator.alerts.firing()))
        return evaluator

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
                        if message.offset < loaded_end[message.partition]:
                            counts["intervals_in_rebuild"] += 1
                            continue
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
            loaded_end.clear()

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


async def _rebuild(settings: Settings, evaluator: SloEvaluator, partition: int) -> int:
    """Learn partition ``partition`` of the intervals topic quietly and restore its firing
    alerts; return the intervals end offset read up to."""
    t = settings.topics
    now_ms = int(time.time() * 1000)
    end = 0
    for topic in (t.intervals, t.alerts):
        consumer = clients.consumer(settings.kafka, "slo-rebuild")
        await consumer.start()
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            stop = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < stop:
                for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    if record.offset >= stop:
                        break
                    where = f"{topic} partition {partition} offset {record.offset}"
                    try:
                        value = orjson.loads(record.value)
                        if topic == t.intervals:
                            evaluator.on_interval(check_record(value, where), now_ms, quiet=True)
                        else:
                            evaluator.restore_alert(value)
                    except (orjson.JSONDecodeError, CallsloError, KeyError, TypeError) as exc:
                        log.error("slo: rebuild skipped %s: %s", where, exc)
            if topic == t.intervals:
                end = stop
        finally:
            await consumer.stop()
    return end
