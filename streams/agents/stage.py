"""A stage of the worker that reads topics in batches with a consumer group of its own.

The SLO stage (:mod:`streams.agents.slo`) and the FCR stage (:mod:`streams.agents.fcr`) read
records that the engine publishes and publish records of their own. A Faust agent would pay
Faust's per-message machinery (~100-250 us) for every record; these stages poll in batches:

1. ``getmany`` on the stage's topics, in the group ``<worker.app_id>-<name>``;
2. :meth:`ConsumerStage.handle` turns the poll into output messages (the subclass' logic);
3. the outputs go out as record batches (:func:`streams.publish.send_keyed`) and are
   acknowledged;
4. the poll's offsets are committed.

A crash between 3 and 4 publishes the poll's outputs again (at least once, identical: the
stages are deterministic). Partitions revoked in a rebalance are handed to
:meth:`ConsumerStage.forget`; a stage rebuilds their state when it sees them again.
:func:`register_stage` runs a stage inside the worker as a service; a failure stops the
worker (nothing was committed that was not published).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, Callable, Sequence

import faust
import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from streams import clients
from streams.publish import send_keyed
from streams.settings import Settings

__all__ = ["ConsumerStage", "Output", "register_stage"]

log = logging.getLogger(__name__)

#: A message to publish: (topic, key, value).
Output = tuple[str, bytes, bytes]
#: Record batches of the outputs: below the broker's default message.max.bytes (1 MB).
OUTPUT_BATCH_BYTES = 512 * 1024


class ConsumerStage:
    """Poll, handle, publish, commit; ``await start()``, ``await run()`` until ``stop()``."""

    #: Part of the group id and of the client ids; set by subclasses.
    name = "stage"
    #: Records per poll at most.
    poll_records = 5000

    def __init__(self, settings: Settings, topics: Sequence[str]) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.counts: Counter[str] = Counter()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def handle(self, polled: dict[TopicPartition, list[Any]]) -> list[Output]:
        """The outputs of one poll (subclasses)."""
        raise NotImplementedError

    def forget(self, partitions: set[int]) -> None:
        """Drop the state of partitions this worker no longer holds (subclasses)."""

    async def start(self) -> None:
        s = self.settings
        self._producer = clients.producer(s.kafka, self.name, linger_ms=5,
                                          max_batch_size=OUTPUT_BATCH_BYTES)
        self._consumer = clients.group_consumer(s.kafka, s.worker, self.name,
                                                f"{s.worker.app_id}-{self.name}")
        await clients.start_stage_clients(self._producer, self._consumer)
        try:
            self._consumer.subscribe(self.topics, listener=_Forget(self))
        except BaseException:
            await self.close()
            raise

    async def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await clients.stop_stage_clients(self._producer, self._consumer)

    async def run(self) -> None:
        """Until :meth:`stop`; Kafka errors propagate."""
        assert self._consumer is not None, "call start() first"
        while not self._stopping.is_set():
            polled = await self._consumer.getmany(timeout_ms=500, max_records=self.poll_records)
            if polled:
                await self.process(polled)

    async def process(self, polled: dict[TopicPartition, list[Any]]) -> None:
        """Steps 2-4 of the module docstring for one poll."""
        assert self._consumer is not None and self._producer is not None
        outputs = await self.handle(polled)
        by_topic: dict[str, list[tuple[bytes, bytes, list]]] = {}
        for topic, key, value in outputs:
            by_topic.setdefault(topic, []).append((key, value, []))
        delivered = []
        for topic, messages in by_topic.items():
            delivered += await send_keyed(self._producer, topic, messages)
        await asyncio.gather(*delivered)
        offsets = {tp: records[-1].offset + 1 for tp, records in polled.items() if records}
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced meanwhile: the new owner handles the poll again and its
            # outputs repeat ours (published at least once, identical).
            log.warning("%s: the poll's offsets were not committed (%s)", self.name, exc)
            self.counts["commits_lost_to_rebalance"] += 1


class _Forget(ConsumerRebalanceListener):
    def __init__(self, stage: ConsumerStage) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.stage.forget({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Any) -> None:
        pass


def register_stage(app: faust.App, name: str, make: Callable[[], ConsumerStage]
                   ) -> dict[str, Any]:
    """Run the stage ``make()`` builds inside the worker as a service named ``name``; returns
    ``{"service": ..., "stage": {"stage": <the stage once started>}}``."""
    box: dict[str, ConsumerStage] = {}

    class StageService(mode.Service):
        shortlabel = f"{name} stage"

        async def on_start(self) -> None:
            stage = box["stage"] = make()
            self.finished = asyncio.Event()
            await stage.start()

        @mode.Service.task
        async def _run(self) -> None:
            stage = box["stage"]
            try:
                await stage.run()
            except Exception as exc:
                log.exception("%s: failed; stopping the worker", stage.name)
                await self.crash(exc)
            finally:
                self.finished.set()

        @mode.Service.timer(60.0)
        async def _report(self) -> None:
            stage = box.get("stage")
            if stage is not None and stage.counts:
                log.info("%s: %s", stage.name, dict(stage.counts))

        async def on_stop(self) -> None:
            stage = box["stage"]
            await stage.stop()
            try:
                await asyncio.wait_for(self.finished.wait(), timeout=30)
            except asyncio.TimeoutError:
                log.warning("%s: the current poll did not finish within 30 s; closing",
                            stage.name)
            await stage.close()

    app.service(StageService)
    return {"service": StageService, "stage": box}
