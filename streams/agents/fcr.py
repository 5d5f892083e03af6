"""First-contact resolution in the worker: contacts in, ``slo.queue-fcr.v1`` records out.

The stage reads the engine's contacts (:mod:`streams.contacts`, keyed by tenant) in the group
``<worker.app_id>-fcr`` and keeps one :class:`~streams.slo.fcr.FcrState` per contacts
partition it holds. Its state is rebuilt, never stored: the first time a worker sees a
partition it reads that partition from its beginning (the topic keeps the FCR window and two
days more) up to the first message it was given, publishing nothing, so the callers of the
last window and the marks of every source partition are back before it goes on. A record is
published when the smallest mark passes the end of its interval; after a crash between
publishing and committing, the same records are published again, identical.
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Any

import faust
import orjson
from aiokafka import TopicPartition

from streams.agents.stage import ConsumerStage, Output, register_stage
from streams.contacts import ContactBatch, decode_contacts
from streams.errors import BatchFormatError
from streams.settings import Settings
from streams.slo.fcr import FcrState
from streams.topic_reader import read_partition

__all__ = ["FcrStage", "register_fcr"]

log = logging.getLogger(__name__)


class FcrStage(ConsumerStage):
    """Contacts in; final first-contact-resolution records per queue interval out."""

    name = "fcr"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, [settings.topics.contacts])
        self.states: dict[int, FcrState] = {}

    def new_state(self) -> FcrState:
        s = self.settings
        return FcrState(window_s=s.slo.fcr_window_s, interval_s=s.engine.interval_s,
                        source_partitions=s.topics.partitions)

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.states.pop(partition, None)

    async def handle(self, polled: dict[TopicPartition, list[Any]]) -> list[Output]:
        outputs: list[Output] = []
        topic = self.settings.topics.fcr
        for tp, records in polled.items():
            if not records:
                continue
            state = self.states.get(tp.partition)
            if state is None:
                state = self.states[tp.partition] = await self.rebuild(tp.partition,
                                                                       records[0].offset)
            for record in records:
                batch = self._decode(tp, record.offset, record.value)
                if batch is None:
                    continue
                for fcr in state.apply(batch):
                    key = f"{fcr['tenant']}/{fcr['queue']}".encode()
                    outputs.append((topic, key, orjson.dumps(fcr)))
                    self.counts["fcr_records"] += 1
            self.counts["contact_messages"] += len(records)
        return outputs

    async def rebuild(self, partition: int, upto: int) -> FcrState:
        """The state of ``partition`` from its messages before offset ``upto``."""
        state = self.new_state()
        read = 0
        async with aclosing(read_partition(self.settings.kafka, self.settings.topics.contacts,
                                           partition, "fcr-rebuild", upto)) as records:
            async for record in records:
                batch = self._decode(TopicPartition(self.settings.topics.contacts, partition),
                                     record.offset, record.value)
                if batch is not None:
                    state.apply(batch)  # published before: learned, not published again
                    read += 1
        log.info("fcr: partition %d rebuilt from %d messages before offset %d (%d callers)",
                 partition, read, upto, len(state.callers))
        return state

    def _decode(self, tp: TopicPartition, offset: int, value: bytes | None) -> ContactBatch | None:
        try:
            return decode_contacts(value or b"")
        except BatchFormatError as exc:
            # Only the engine writes this topic; a message it cannot read is a bug to see in
            # the log (and in the counts), not a reason to stop every other tenant's FCR.
            log.error("fcr: skipped %s partition %d offset %d: %s", tp.topic, tp.partition,
                      offset, exc)
            self.counts["bad_messages"] += 1
            return None


def register_fcr(app: faust.App, settings: Settings) -> dict[str, Any]:
    """Run the FCR stage inside the worker as a service; returns its parts by name."""
    return register_stage(app, "fcr", lambda: FcrStage(settings))
