"""Runs queue_log lines through ``callslo ingest asterisk``'s publisher without a broker (a
stand-in producer keeps what would be sent) and checks what became of each line."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.adapters.asterisk import LINE_REASONS, QueueLogMapper
from streams.adapters.ingest_cmd import QueueLogPublisher
from streams.contract import REASONS, Decoder
from streams.settings import Settings

PATH = "/var/log/asterisk/queue_log"


class RecordingProducer:
    """Acknowledges every send at once and keeps ``(topic, key, value, headers)``."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes, dict[str, bytes]]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> Any:
        self.records.append((topic, key, value, dict(headers or [])))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def publish_lines(lines: list[bytes], now_ms: int
                  ) -> tuple[QueueLogPublisher, list[tuple[str, bytes | None, bytes, dict]]]:
    """Publish ``lines`` as lines 1, 2, ... of one file; return the publisher (its counts)
    and the records, after checking that every line is accounted for exactly once."""
    settings = Settings.from_mapping({}, env={})
    producer = RecordingProducer()
    decoder = Decoder.from_settings(settings.ingest)
    publisher = QueueLogPublisher(settings, QueueLogMapper(tenant="acme", source="fuzz"),
                                  decoder=decoder, producer=producer)

    async def run() -> None:
        await publisher.start()
        await publisher.publish([(PATH, number, line) for number, line in enumerate(lines, 1)])

    asyncio.run(run())
    counts = publisher.counts
    records = producer.records
    topics = settings.topics
    dead = [r for r in records if r[0] == topics.dlq]
    events = [r for r in records if r[0] == topics.events]
    assert len(dead) + len(events) == len(records)
    assert counts.lines == len(lines)
    assert (counts.blank + sum(counts.skipped.values()) + sum(counts.events.values())
            + sum(counts.dead_lettered.values())) == len(lines)
    assert len(events) == sum(counts.events.values())
    assert len(dead) == sum(counts.dead_lettered.values())
    numbers = []
    for _, key, value, headers in dead:
        reason = headers["callslo.reason"].decode()
        assert reason in LINE_REASONS or reason in REASONS, reason
        assert headers["callslo.source.topic"] == f"asterisk:{PATH}".encode()
        number = int(headers["callslo.source.offset"])
        assert value == lines[number - 1], "the dead letter carries the line as read"
        assert len(headers["callslo.detail"]) <= 600
        numbers.append(number)
    assert numbers == sorted(set(numbers)), "one dead letter per line, in file order"
    for _, key, value, _ in events:
        event = decoder.decode(value, key, now_ms)
        assert type(event) is dict, event
    return publisher, records
