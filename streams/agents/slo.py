"""SLO evaluation in the worker: the service that turns interval and realtime records into
alerts, staffing and error-budget records (the logic is :class:`streams.slo.evaluator.SloEvaluator`).

The service consumes ``topics.intervals`` and ``topics.realtime`` in batches with a consumer
of its own, in the group ``<worker.app_id>-slo``: the group's assignment gives each worker the
same partitions of both topics (equal partition counts, keyed ``<tenant>/<queue>``), so each
worker evaluates the queues of the partitions it holds. A Faust agent would cost Faust's
per-message machinery (~100-250 us) for every record; catching up on a day of records of
100 000 queues that alone took longer than computing them.

Its state is rebuilt, never stored: the first time a worker sees a partition (at start, after
a rebalance) it reads that partition of the alerts topic to learn which alerts are firing,
and at the first interval message of the partition it reads the intervals topic from the
beginning up to that message without publishing anything. A repeated record is recognised by
(tenant, queue, interval start). A group without committed offsets starts at the beginning of
both topics: records older than ``slo.alerts.stale_after_s`` (plus one interval) are learned
as history without publishing anything. Realtime snapshots are not replayed: the
staffed-agents meter of the interval open at a restart covers only the time after it
(``staffed_coverage`` says how much).

Publishing is at least once: the offsets of a poll are committed once everything it
published is acknowledged, so after a crash the same alert, staffing or budget record can be
published again, identical (alerts keep their id). Revoked partitions forget their state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, AsyncIterator

import faust
import mode
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from streams import clients
from streams.errors import CallsloError
from streams.publish import send_keyed
from streams.settings import Settings
from streams.slo.evaluator import Output, SloEvaluator
from streams.slo.report.load import check_record

__all__ = ["register_slo", "SloStage"]

log = logging.getLogger(__name__)

#: Records per poll at most; a poll's outputs are published and acknowledged together.
_POLL_RECORDS = 5000


class SloStage:
    """The evaluation loop on Kafka: ``await start()``, ``await run()`` until ``stop()``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.evaluators: dict[int, SloEvaluator] = {}
        self.history_loaded: set[int] = set()
        self.counts: Counter[str] = Counter()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        s = self.settings
        self._producer = clients.producer(s.kafka, "slo", linger_ms=5,
                                          max_batch_size=512 * 1024)
        self._consumer = clients.consumer(
            s.kafka, "slo", group_id=f"{s.worker.app_id}-slo",
            session_timeout_ms=s.worker.broker_session_timeout_s * 1000,
            heartbeat_interval_ms=s.worker.broker_heartbeat_interval_s * 1000)
        await self._producer.start()
        try:
            await self._consumer.start()
            self._consumer.subscribe([s.topics.intervals, s.topics.realtime],
                                     listener=_Forget(self))
        except BaseException:
            await self._producer.stop()
            raise

    async def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    def forget(self, partitions: set[int]) -> None:
        """Drop the state of partitions this worker no longer holds (rebuilt on next use)."""
        for partition in partitions:
            self.evaluators.pop(partition, None)
            self.history_loaded.discard(partition)

    async def run(self) -> None:
        """Poll, evaluate, publish, commit; until :meth:`stop`. Kafka errors propagate."""
        assert self._consumer is not None, "call start() first"
        while not self._stopping.is_set():
            polled = await self._consumer.getmany(timeout_ms=500, max_records=_POLL_RECORDS)
            if polled:
                await self.process(polled)

    async def process(self, polled: dict[TopicPartition, list[Any]]) -> None:
        """Evaluate one poll, publish its outputs, then commit it."""
        assert self._consumer is not None and self._producer is not None
        t = self.settings.topics
        outputs: list[Output] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, records in polled.items():
            if not records:
                continue
            evaluator = await self.evaluator_for(tp.partition)
            now_ms = int(time.time() * 1000)
            for record in records:
                where = f"{tp.topic} partition {tp.partition} offset {record.offset}"
                try:
                    value = orjson.loads(record.value)
                    if tp.topic == t.intervals:
                        if tp.partition not in self.history_loaded:
                            await self.learn_history(evaluator, tp.partition, record.offset)
                        outputs += evaluator.on_interval(check_record(value, where), now_ms)
                        self.counts["intervals"] += 1
                    else:
                        outputs += evaluator.on_realtime(_check_realtime(value, where), now_ms)
                        self.counts["realtime"] += 1
                except (orjson.JSONDecodeError, CallsloError) as exc:
                    # Our own engine wrote these records; one it cannot read is a bug to see
                    # in the log, not a reason to stop evaluating every other queue.
                    log.error("slo: skipped %s: %s", where, exc)
                    self.counts["bad_records"] += 1
            offsets[tp] = records[-1].offset + 1
        delivered = []
        for role, topic in (("alerts", t.alerts), ("staffing", t.staffing), ("budget", t.budget)):
            delivered += await send_keyed(self._producer, topic, (
                (o.key.encode(), orjson.dumps(o.value), []) for o in outputs if o.role == role))
        await asyncio.gather(*delivered)
        self.counts.update(f"{o.role}_records" for o in outputs)
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced meanwhile: the new owner evaluates the poll again and its
            # outputs repeat ours (published at least once, identical).
            log.warning("slo: the poll's offsets were not committed (%s)", exc)
            self.counts["commits_lost_to_rebalance"] += 1

    async def evaluator_for(self, partition: int) -> SloEvaluator:
        evaluator = self.evaluators.get(partition)
        if evaluator is None:
            s = self.settings
            evaluator = SloEvaluator(s.slo, s.engine.interval_s)
            async for where, value in _read_partition(s, s.topics.alerts, partition, None):
                try:
                    evaluator.restore_alert(value)
                except (KeyError, TypeError) as exc:
                    log.error("slo: skipped %s while restoring alerts: %s", where, exc)
            self.evaluators[partition] = evaluator
            log.info("slo: partition %d ready, %d alerts firing", partition,
                     sum(1 for _ in evaluator.alerts.firing()))
        return evaluator

    async def learn_history(self, evaluator: SloEvaluator, partition: int, upto: int) -> None:
        now_ms = int(time.time() * 1000)
        learned = 0
        async for where, value in _read_partition(self.settings, self.settings.topics.intervals,
                                                  partition, upto):
            try:
                evaluator.on_interval(check_record(value, where), now_ms, quiet=True)
                learned += 1
            except CallsloError as exc:
                log.error("slo: skipped %s while learning history: %s", where, exc)
        self.history_loaded.add(partition)
        log.info("slo: partition %d learned %d interval records before offset %d", partition,
                 learned, upto)


class _Forget(ConsumerRebalanceListener):
    def __init__(self, stage: SloStage) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.stage.forget({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Any) -> None:
        pass


def register_slo(app: faust.App, settings: Settings) -> dict[str, Any]:
    """Run the SLO stage inside the worker as a service; returns its parts by name."""
    stage_box: dict[str, SloStage] = {}

    class SloService(mode.Service):
        """SLO evaluation inside the worker process; a failure stops the worker (offsets are
        committed only after the outputs are acknowledged, so the restart repeats, never
        skips)."""

        async def on_start(self) -> None:
            stage = stage_box["stage"] = SloStage(settings)
            self.finished = asyncio.Event()
            await stage.start()

        @mode.Service.task
        async def _run(self) -> None:
            try:
                await stage_box["stage"].run()
            except Exception as exc:
                log.exception("slo: evaluation failed; stopping the worker")
                await self.crash(exc)
            finally:
                self.finished.set()

        @mode.Service.timer(60.0)
        async def _report(self) -> None:
            counts = stage_box["stage"].counts
            if counts:
                log.info("slo: %s", dict(counts))

        async def on_stop(self) -> None:
            stage = stage_box["stage"]
            await stage.stop()
            try:
                await asyncio.wait_for(self.finished.wait(), timeout=30)
            except asyncio.TimeoutError:
                log.warning("slo: the current poll did not finish within 30 s; closing")
            await stage.close()

    app.service(SloService)
    return {"service": SloService, "stage": stage_box}


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
