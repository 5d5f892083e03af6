"""The worker's reader of the wallboard's topics: realtime snapshots, interval records, alerts
and staffing, every partition of each, into a :class:`~streams.web.view.WallboardView`.

Every worker reads the topics whole (no consumer group, nothing committed), so any worker of
a group serves the full wallboard whichever partitions it processes. A start reads back only
as far as the wallboard needs: the last hour of snapshots, two days of interval records and
staffing (today's chart in any time zone), a week of alerts. Topics that do not exist yet
(alerts and staffing come from other stages) are looked for again every few seconds.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Callable

import mode
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams import clients
from streams.fetch import bare_records
from streams.settings import Settings
from streams.topics import partition_ids
from streams.web.view import WallboardView

__all__ = ["ViewReader", "LOOKBACK_MS"]

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
#: How far back (by the time records were published) a start reads each kind of record.
LOOKBACK_MS = {"realtime": HOUR_MS, "intervals": 48 * HOUR_MS, "alerts": 7 * 24 * HOUR_MS,
               "staffing": 48 * HOUR_MS}
_RECHECK_S = 5.0


class ViewReader(mode.Service):
    """Keeps ``view`` up to date with the topics named in ``settings.topics``."""

    def __init__(self, settings: Settings, view: WallboardView, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.view = view
        t = settings.topics
        self.kinds = {t.realtime: "realtime", t.intervals: "intervals", t.alerts: "alerts",
                      t.staffing: "staffing"}
        self.apply: dict[str, Callable[[dict[str, Any]], bool]] = {
            "realtime": view.apply_realtime, "intervals": view.apply_interval,
            "alerts": view.apply_alert, "staffing": view.apply_staffing}
        self.counts: Counter[str] = Counter()
        self.last_record_ms = 0
        self._topics_read: set[str] = set()

    @mode.Service.task
    async def _read(self) -> None:
        consumer = clients.consumer(self.settings.kafka, "wallboard")
        await consumer.start()
        bare_records(consumer)  # records read by timestamp and value only
        next_check = 0.0
        try:
            while not self.should_stop:
                if len(self._topics_read) < len(self.kinds) and time.monotonic() >= next_check:
                    next_check = time.monotonic() + _RECHECK_S
                    try:
                        await self._assign_new_topics(consumer)
                    except (KafkaError, OSError) as exc:
                        log.warning("wallboard: cannot look up topics (%s); retrying", exc)
                if not consumer.assignment():
                    await self.sleep(1.0)
                    continue
                polled = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in polled.items():
                    self._apply(self.kinds[tp.topic], records)
        finally:
            await consumer.stop()

    def _apply(self, kind: str, records: list[Any]) -> None:
        apply = self.apply[kind]
        for record in records:
            self.counts[f"{kind}_read"] += 1
            self.last_record_ms = max(self.last_record_ms, record.timestamp or 0)
            try:
                value = orjson.loads(record.value)
            except (orjson.JSONDecodeError, TypeError):
                value = None
            if not isinstance(value, dict):
                # Not ours to dead-letter (we only read); counted and shown on /metrics.
                self.counts[f"{kind}_not_json"] += 1
                continue
            apply(value)

    async def _assign_new_topics(self, consumer: AIOKafkaConsumer) -> None:
        """Add the topics that exist now to the assignment, keeping the positions reached."""
        found: dict[str, list[int]] = {}
        for topic in self.kinds:
            if topic not in self._topics_read:
                partitions = await partition_ids(self.settings.kafka, topic)
                if partitions:
                    found[topic] = partitions
        if not found:
            return
        kept = {tp: await consumer.position(tp) for tp in consumer.assignment()}
        new = [TopicPartition(topic, p) for topic, ps in found.items() for p in ps]
        consumer.assign([*kept, *new])
        for tp, offset in kept.items():
            consumer.seek(tp, offset)
        now_ms = int(time.time() * 1000)
        starts = await consumer.offsets_for_times(
            {tp: max(0, now_ms - LOOKBACK_MS[self.kinds[tp.topic]]) for tp in new})
        at_end = []
        for tp in new:
            found_offset = starts.get(tp)
            if found_offset is None:
                at_end.append(tp)  # nothing published within the lookback
            else:
                consumer.seek(tp, found_offset.offset)
        if at_end:
            await consumer.seek_to_end(*at_end)
        self._topics_read.update(found)
        log.info("wallboard: reading %s", ", ".join(sorted(found)))
