"""The Faust app: built from the settings, with stage 1 running inside it as a service and
stage 2's agents and tables registered from ``streams/agents/``."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

import aiokafka
import faust
import mode
from faust.transport.drivers import aiokafka as faust_kafka

from streams import clients
from streams.agents.engine import register_engine
from streams.agents.fcr import register_fcr
from streams.agents.slo import register_slo
from streams.ingest import IngestStage
from streams.settings import Settings
from streams.topics import ensure_topics
from streams.warmup import warm_up
from streams.web import register_web

__all__ = ["create_app", "run_worker"]

log = logging.getLogger(__name__)


class _ConsumerThread(faust_kafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_kafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust hard-codes fetch_max_wait_ms=1500. A fetch in flight then waits up to 1.5 s
        # on partitions without data, and a partition left out of it (its records were still
        # buffered when it was sent) waits behind it: column batches reached the engine agent
        # 1-1.8 s after stage 1 produced them. The attribute is read when the consumer starts.
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms
        return consumer


class _Consumer(faust_kafka.Consumer):
    def _new_consumer_thread(self) -> faust_kafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_kafka.Transport):
    Consumer = _Consumer


class CallsloApp(faust.App):
    """A Faust app whose consumer waits at most ``worker.fetch_max_wait_ms`` per fetch."""

    fetch_max_wait_ms: int = 1500

    def _new_transport(self) -> faust_kafka.Transport:
        return _Transport(self.conf.broker_consumer, self)


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured from ``settings``, with the ingest stage as a service."""
    data_dir = Path(settings.worker.data_dir).expanduser()
    app = CallsloApp(
        settings.worker.app_id,
        broker=f"kafka://{settings.kafka.bootstrap}",
        broker_credentials=clients.faust_credentials(settings.kafka),
        datadir=str(data_dir),
        store="memory://",
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication,
        # Faust's default session timeout (60 s) makes the first group join take ~30 s.
        broker_session_timeout=settings.worker.broker_session_timeout_s,
        broker_heartbeat_interval=settings.worker.broker_heartbeat_interval_s,
        # Faust binds 0.0.0.0:6066 unless told otherwise; a second worker on the host would crash
        # and the API would be open to the network.
        web_bind=settings.web.host,
        web_host=settings.web.public_host,
        web_port=settings.web.port,
        producer_acks=-1,
        # Changelog shards may be large (see streams/agents/engine.py); Faust's default is 1 MB.
        producer_max_request_size=clients.MAX_REQUEST_BYTES,
        autodiscover=False,
    )
    app.fetch_max_wait_ms = settings.worker.fetch_max_wait_ms

    class IngestService(mode.Service):
        """Stage 1 inside the worker process; a failure stops the worker (nothing is
        committed that was not produced, so the restart resumes where it left off)."""

        stage: IngestStage

        async def on_start(self) -> None:
            self.stage = IngestStage(settings)
            self.finished = asyncio.Event()
            await self.stage.start()
            log.info("ingest: consuming %s", settings.topics.events)

        @mode.Service.task
        async def _run(self) -> None:
            try:
                await self.stage.run()
            except Exception as exc:
                log.exception("ingest: stage 1 failed; stopping the worker")
                await self.crash(exc)
            finally:
                self.finished.set()

        async def on_stop(self) -> None:
            # Let the loop finish its current poll (its produces and commit) before the
            # clients close under it; what is not committed is read again on restart.
            await self.stage.stop()
            try:
                await asyncio.wait_for(self.finished.wait(), timeout=30)
            except asyncio.TimeoutError:
                log.warning("ingest: the current poll did not finish within 30 s; closing")
            await self.stage.close()
            log.info("ingest: stopped after %s, dead letters %s",
                     dict(self.stage.counts), dict(self.stage.rejections))

    app.service(IngestService)
    engine = register_engine(app, settings)
    register_slo(app, settings)  # alerts, staffing, error budget
    register_fcr(app, settings)  # first-contact resolution
    register_web(app, settings, engine, IngestService)  # wallboard, API, /metrics
    return app


#: Allocations between two young-generation collections (CPython's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Set the cyclic garbage collector for a process that allocates a few objects per event
    and holds a large, long-lived state. With CPython's defaults it ran a collection every few
    hundred records and scanned the queues' state over and over: the worker did 73k events/s
    with 1,000 queues and 30k with 100,000 where it does 87k and 42k with this (bench/README.md).
    What exists at start (the app, the settings, the compiled kernels) is frozen out of every
    later collection; young collections run every ``GC_YOUNG_THRESHOLD`` allocations, which
    bounds what cyclic garbage can pile up to that many objects. Reference counting, which
    frees everything else, is untouched."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in the foreground until SIGINT/SIGTERM."""
    if settings.topics.create_missing:
        created = asyncio.run(ensure_topics(settings))
        if created:
            log.info("created topics %s", created)
    # Compile (or load) every kernel before joining the groups, not during the first polls.
    warm_up(settings)
    app = create_app(settings)
    tune_gc()
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False)
    worker.execute_from_commandline()
