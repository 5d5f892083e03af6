"""Where simulated events go: a JSON-lines file (fast, orjson) or a Kafka topic (aiokafka,
keyed by :func:`streams.contract.event_key`), as fast as possible or paced by event time.

Items are event dicts or :class:`~streams.simulate.faults.RawLine` (malformed messages that
carry their own bytes and key).
"""

from __future__ import annotations

import asyncio
import time
from typing import IO, Any, Callable, Iterable

import orjson
from aiokafka.errors import KafkaError

from streams import clients
from streams.contract import event_key
from streams.errors import CallsloError
from streams.settings import KafkaSettings
from streams.simulate.faults import RawLine, item_ts_ms

__all__ = ["Pacer", "write_file", "produce_kafka", "encode"]

#: Futures awaited together when producing; bounds memory, keeps the producer's batches full.
SEND_WINDOW = 5_000


def encode(item: dict[str, Any] | RawLine) -> bytes:
    return orjson.dumps(item) if type(item) is dict else item.value


class Pacer:
    """Maps event time to wall time: the event at ``origin_ms`` is due when the pacer is
    made, and event time runs ``speedup`` times faster than the clock (1.0 = real time).
    ``speedup = None`` means no pacing: everything is due at once."""

    def __init__(self, speedup: float | None, origin_ms: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if speedup is not None and not speedup > 0:
            raise ValueError("speedup must be > 0")
        self.speedup = speedup
        self.origin_ms = origin_ms
        self.clock = clock
        self.wall_origin_s = clock()

    def reached_ms(self) -> float:
        """The latest event time that is due now."""
        if self.speedup is None:
            return float("inf")
        return self.origin_ms + (self.clock() - self.wall_origin_s) * 1000.0 * self.speedup

    def delay_s(self, ts_ms: int) -> float:
        """Seconds to wait before the event at ``ts_ms`` is due (0 when it is)."""
        if self.speedup is None:
            return 0.0
        due_s = self.wall_origin_s + (ts_ms - self.origin_ms) / 1000.0 / self.speedup
        return max(0.0, due_s - self.clock())


def _paced(chunks: Iterable[list[Any]], pacer: Pacer) -> Iterable[tuple[float, list[Any]]]:
    """Split chunks into runs of due items, each with the seconds to wait before sending it."""
    if pacer.speedup is None:
        for chunk in chunks:
            yield 0.0, chunk
        return
    reached = pacer.reached_ms()
    for chunk in chunks:
        run: list[Any] = []
        for item in chunk:
            ts_ms = item_ts_ms(item)
            if ts_ms > reached:
                if run:
                    yield 0.0, run
                    run = []
                yield pacer.delay_s(ts_ms), []
                reached = pacer.reached_ms()
            run.append(item)
        if run:
            yield 0.0, run


def write_file(chunks: Iterable[list[Any]], out: IO[bytes], pacer: Pacer,
               sleep: Callable[[float], None] = time.sleep) -> int:
    """Write every item as one JSON line; return the number written."""
    written = 0
    dumps = orjson.dumps
    for wait_s, run in _paced(chunks, pacer):
        if wait_s > 0:
            out.flush()
            sleep(wait_s)
        if run:
            # Appending to one buffer lets each line's bytes be freed at once: a list of
            # thousands of live bytes objects costs several times the serialisation itself.
            buffer = bytearray()
            for item in run:
                buffer += dumps(item) if type(item) is dict else item.value
                buffer += b"\n"
            out.write(buffer)
            written += len(run)
    out.flush()
    return written


async def produce_kafka(chunks: Iterable[list[Any]], kafka: KafkaSettings, topic: str,
                        pacer: Pacer) -> int:
    """Send every item to ``topic`` with its contract key; return the number sent.

    The producer is idempotent with ``acks=all``, so a retried batch is neither lost nor
    doubled, and the events of one key keep their order."""
    producer = clients.producer(kafka, "simulate", linger_ms=20, max_batch_size=256 * 1024)
    sent = 0
    try:
        await producer.start()
        window: list[asyncio.Future] = []
        for wait_s, run in _paced(chunks, pacer):
            if wait_s > 0:
                await asyncio.gather(*window)  # what is due is out before we sleep
                sent += len(window)
                window = []
                await asyncio.sleep(wait_s)
            for item in run:
                if type(item) is dict:
                    key, value = event_key(item).encode(), orjson.dumps(item)
                else:
                    key = None if item.key is None else item.key.encode()
                    value = item.value
                window.append(await producer.send(topic, value, key=key))
                if len(window) >= SEND_WINDOW:
                    await asyncio.gather(*window)
                    sent += len(window)
                    window = []
        await asyncio.gather(*window)
        sent += len(window)
    except KafkaError as exc:
        raise CallsloError(f"cannot produce to {topic} on {kafka.bootstrap}: {exc}") from exc
    finally:
        await producer.stop()
    return sent
