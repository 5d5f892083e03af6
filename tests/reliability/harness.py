"""The reliability suite's pieces: a simulated event stream with its ground truth from
`callslo replay`, a feeder that produces it at a steady pace while faults happen, and the
comparison that reports events, faults, records compared, counts lost and doubled."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.contract import event_key
from streams.replay import ReplayResult, record_sort_key, replay_lines
from streams.settings import Settings
from streams.simulate.faults import FaultInjector, FaultSpec
from streams.simulate.model import Simulation
from streams.simulate.output import encode
from streams.simulate.profile import DAY_MS, default_scenario
from tests.integration.kafka_helpers import partition_ids, read_all
from tests.integration.worker_process import Worker, final_records

ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "reliability.jsonl"

#: Counts that must add up exactly between the worker and the ground truth, per interval.
COUNTED_FIELDS = ("offered", "entered", "handled")

#: Dirty input every fault test carries: repeated events and disorder well within the
#: allowed lateness (120 s), so that neither may change a record.
BASE_FAULTS = FaultSpec(duplicates=0.01, disorder_ms=60_000)

RecordKey = tuple[str, str, int]


def engine_settings(make_settings, bootstrap: str, *, idle_close_s: int, **sections) -> Settings:
    """The suite's settings: three partitions, default intervals and lateness, a short
    ``idle_close_s`` (the end of the stream closes within it) and a short group session, so a
    killed worker's partitions move within seconds (the broker's minimum is 6 s)."""
    return make_settings(bootstrap, engine={"idle_close_s": idle_close_s},
                         worker={"broker_session_timeout_s": 6,
                                 "broker_heartbeat_interval_s": 2}, **sections)


@dataclass
class Stream:
    """A simulated day in arrival order, its Kafka messages and what the faults injected."""

    items: list[Any]
    messages: list[tuple[bytes | None, bytes]]
    injected: Counter[str]

    def ground_truth(self, settings: Settings) -> ReplayResult:
        """`callslo replay` of the same lines in the same arrival order."""
        return replay_lines((value for _, value in self.messages), settings)


def simulated_day(seed: int, faults: FaultSpec = BASE_FAULTS) -> Stream:
    """One day of the built-in scenario (two tenants, four queues), ending in the past."""
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms - DAY_MS - 3_600_000) // DAY_MS * DAY_MS
    simulation = Simulation(default_scenario(), start_ms=start_ms, duration_ms=DAY_MS, seed=seed)
    injector = FaultInjector(faults, seed)
    items = [item for chunk in injector.apply(simulation.run()) for item in chunk]
    messages = [(_key(item), encode(item)) for item in items]
    return Stream(items, messages, injector.counts)


def _key(item: Any) -> bytes | None:
    if type(item) is dict:
        return event_key(item).encode()
    return None if item.key is None else item.key.encode()


class Feeder:
    """Produces the messages in order, ``rate_per_s`` a second, from a thread: the contact
    center keeps sending while the test breaks things. :meth:`pause` returns once everything
    sent so far is acknowledged (an ACD adapter holding its events while the broker is down)."""

    def __init__(self, bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]],
                 rate_per_s: float, chunk: int = 100) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.messages = messages
        self.chunk = chunk
        self.chunk_interval_s = chunk / rate_per_s
        self.acknowledged = 0
        self._go = threading.Event()
        self._go.set()
        self._idle = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="feeder", daemon=True)

    def start(self) -> "Feeder":
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self.acknowledged == len(self.messages)

    def pause(self) -> None:
        self._idle.clear()
        self._go.clear()
        while not self._idle.wait(0.2):
            self.check()
            if not self._thread.is_alive():
                break

    def resume(self) -> None:
        self._go.set()

    def check(self) -> None:
        if self._error is not None:
            raise AssertionError(f"the feeder failed: {self._error!r}") from self._error

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        self.check()
        assert self.done, f"the feeder sent {self.acknowledged} of {len(self.messages)}"

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported to the test thread by check()
            self._error = exc
        finally:
            self._idle.set()

    async def _run(self) -> None:
        # A long request timeout: the broker may be away for a while during a test.
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=5,
                                    request_timeout_ms=120_000)
        await producer.start()
        try:
            next_at = time.monotonic()
            for i in range(0, len(self.messages), self.chunk):
                if not self._go.is_set():
                    self._idle.set()
                    while not self._go.is_set():
                        await asyncio.sleep(0.1)
                    next_at = time.monotonic()
                delay_s = next_at - time.monotonic()
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
                next_at += self.chunk_interval_s
                futures = [await producer.send(self.topic, value, key=key)
                           for key, value in self.messages[i:i + self.chunk]]
                await asyncio.gather(*futures)
                self.acknowledged = i + len(futures)
        finally:
            await producer.stop()


async def end_offsets_total(bootstrap: str, topic: str) -> int:
    """The number of messages ever written to ``topic`` (sum of its end offsets)."""
    tps = [TopicPartition(topic, p) for p in await partition_ids(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


def changelog_topic(settings: Settings) -> str:
    """Where the worker writes its queue state (Faust names a table's changelog so)."""
    return f"{settings.worker.app_id}-queue-state-changelog"


@dataclass
class Figures:
    """What one fault test did and found; printed and appended to the JSON-lines artifact."""

    test: str
    events: int
    faults: dict[str, int]
    records_expected: int = 0
    records_compared: int = 0
    records_published: int = 0
    fields_differing: int = 0
    lost: int = 0
    doubled: int = 0
    late_dead_lettered: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def report(self) -> None:
        faults = ", ".join(f"{k} {v}" for k, v in self.faults.items())
        print(f"\nreliability {self.test}: events {self.events}, faults [{faults}], records "
              f"compared {self.records_compared}/{self.records_expected} (published "
              f"{self.records_published}), fields differing {self.fields_differing}, lost "
              f"{self.lost}, doubled {self.doubled}, late dead-lettered "
              f"{self.late_dead_lettered}" + (f", {self.extra}" if self.extra else ""),
              flush=True)
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        line = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **self.__dict__}
        with ARTIFACT.open("a") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")


def compare(figures: Figures, truth: ReplayResult, bootstrap: str,
            settings: Settings) -> dict[RecordKey, dict[str, Any]]:
    """Fill ``figures`` from the worker's output against the ground truth; return the final
    records. Counts are lost or doubled per interval: a missing record loses all of its
    counts, an extra one doubles them."""
    published = asyncio.run(read_all(bootstrap, settings.topics.intervals))
    got = final_records(published)
    expected = {record_sort_key(r): r for r in truth.records}
    figures.records_expected = len(expected)
    figures.records_published = len(published)
    figures.records_compared = len(expected.keys() & got.keys())
    for key in expected.keys() | got.keys():
        want, have = expected.get(key, {}), got.get(key, {})
        names = want.keys() | have.keys()
        figures.fields_differing += sum(want.get(n) != have.get(n) for n in names)
        for name in COUNTED_FIELDS:
            diff = have.get(name, 0) - want.get(name, 0)
            figures.lost += max(0, -diff)
            figures.doubled += max(0, diff)
    late = late_dead_letters(bootstrap, settings)
    figures.late_dead_lettered = len(late)
    figures.report()
    return got


def late_dead_letters(bootstrap: str, settings: Settings) -> dict[tuple[int, int], str]:
    """The worker's ``late`` dead letters: source (partition, offset) -> event id. A crash
    can publish one again (identical); it is the same dead letter."""
    late: dict[tuple[int, int], str] = {}
    for record in asyncio.run(read_all(bootstrap, settings.topics.dlq)):
        headers = dict(record.headers)
        if headers["callslo.reason"] != b"late":
            continue
        where = (int(headers["callslo.source.partition"]), int(headers["callslo.source.offset"]))
        late[where] = orjson.loads(record.value)["event_id"]
    return late


class Supervisor:
    """Restarts a worker that exited, as the deployment's supervisor does (docker-compose's
    ``restart: unless-stopped``), at most once per ``min_interval_s``; keeps the exit codes."""

    def __init__(self, worker: Worker, min_interval_s: float = 2.0) -> None:
        self.worker = worker
        self.min_interval_s = min_interval_s
        self.exit_codes: list[int] = []
        self._exited_at: float | None = None

    def check(self) -> None:
        proc = self.worker.proc
        if proc is None or proc.poll() is None:
            return
        if self._exited_at is None:
            self._exited_at = time.monotonic()
            self.exit_codes.append(proc.returncode)
            print(f"supervisor: worker {self.worker.name} exited with code {proc.returncode}; "
                  "restarting it", flush=True)
        if time.monotonic() - self._exited_at >= self.min_interval_s:
            self._exited_at = None
            self.worker.start()
