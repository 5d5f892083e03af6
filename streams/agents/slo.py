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

import logging
import time
from contextlib import aclosing
from typing import Any, AsyncIterator

import faust
import orjson
from aiokafka import TopicPartition

from streams.agents.stage import ConsumerStage, Output, register_stage
from streams.errors import CallsloError
from streams.settings import Settings
from streams.slo.evaluator import SloEvaluator
from streams.slo.report.load import check_fcr, check_record
from streams.topic_reader import read_partition

__all__ = ["register_slo", "SloStage"]

log = logging.getLogger(__name__)


class SloStage(ConsumerStage):
    """Interval and realtime records in; alerts, staffing and budget records out."""

    name = "slo"

    def __init__(self, settings: Settings) -> None:
        t = settings.topics
        super().__init__(settings, [t.intervals, t.realtime, t.fcr])
        self.evaluators: dict[int, SloEvaluator] = {}
        #: (topic, partition) whose records before the first one seen were learned.
        self.history_loaded: set[tuple[str, int]] = set()

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.evaluators.pop(partition, None)
            self.history_loaded = {h for h in self.history_loaded if h[1] != partition}

    async def handle(self, polled: dict[TopicPartition, list[Any]]) -> list[Output]:
        t = self.settings.topics
        roles = {"alerts": t.alerts, "staffing": t.staffing, "budget": t.budget}
        outputs: list[Output] = []
        for tp, records in polled.items():
            if not records:
                continue
            evaluator = await self.evaluator_for(tp.partition)
            now_ms = int(time.time() * 1000)
            for record in records:
                where = f"{tp.topic} partition {tp.partition} offset {record.offset}"
                try:
                    value = orjson.loads(record.value)
                    if tp.topic in (t.intervals, t.fcr):
                        if (tp.topic, tp.partition) not in self.history_loaded:
                            await self.learn_history(evaluator, tp.topic, tp.partition,
                                                     record.offset)
                        if tp.topic == t.intervals:
                            results = evaluator.on_interval(check_record(value, where), now_ms)
                        else:
                            results = evaluator.on_fcr(check_fcr(value, where), now_ms)
                        self.counts[tp.topic] += 1
                    else:
                        results = evaluator.on_realtime(_check_realtime(value, where), now_ms)
                        self.counts["realtime"] += 1
                except (orjson.JSONDecodeError, CallsloError) as exc:
                    # Our own engine wrote these records; one it cannot read is a bug to see
                    # in the log, not a reason to stop evaluating every other queue.
                    log.error("slo: skipped %s: %s", where, exc)
                    self.counts["bad_records"] += 1
                    continue
                for o in results:
                    outputs.append((roles[o.role], o.key.encode(), orjson.dumps(o.value)))
                    self.counts[f"{o.role}_records"] += 1
        return outputs

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

    async def learn_history(self, evaluator: SloEvaluator, topic: str, partition: int,
                            upto: int) -> None:
        """The interval (or FCR) records of ``partition`` before offset ``upto``, learned
        without publishing anything."""
        now_ms = int(time.time() * 1000)
        learned = 0
        async for where, value in _read_partition(self.settings, topic, partition, upto):
            try:
                if topic == self.settings.topics.intervals:
                    evaluator.on_interval(check_record(value, where), now_ms, quiet=True)
                else:
                    evaluator.on_fcr(check_fcr(value, where), now_ms, quiet=True)
                learned += 1
            except CallsloError as exc:
                log.error("slo: skipped %s while learning history: %s", where, exc)
        self.history_loaded.add((topic, partition))
        log.info("slo: partition %d learned %d records of %s before offset %d", partition,
                 learned, topic, upto)


def register_slo(app: faust.App, settings: Settings) -> dict[str, Any]:
    """Run the SLO stage inside the worker as a service; returns its parts by name."""
    return register_stage(app, "slo", lambda: SloStage(settings))


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
    async with aclosing(read_partition(settings.kafka, topic, partition, "slo-rebuild",
                                       upto)) as records:
        async for record in records:
            where = f"{topic} partition {partition} offset {record.offset}"
            try:
                value = orjson.loads(record.value)
            except orjson.JSONDecodeError as exc:
                log.error("slo: skipped %s: not JSON (%s)", where, exc)
                continue
            yield where, value
