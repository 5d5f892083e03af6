"""End-to-end throughput of the engine on a real broker, side by side with two references.

One run, one broker, the same generated events (call lifecycles: queued, answered or abandoned,
ended; queues drawn Zipf-distributed), measured three ways:

(a) raw limit: aiokafka ``getmany`` + ``orjson.loads`` of every event, nothing else;
(b) callslo: the ``callslo worker`` process, from the first column batch stage 1 writes to
    the last final interval record, every changelog write acknowledged before it (the
    engine only publishes after the previous step's state is durable);
(c) a plain Faust agent counting per queue in a windowed table, one table write per event
    (``bench/faust_baseline.py``), from its first to its last event.

Times come from Kafka record timestamps (CreateTime of the first batch and the last record),
so process start-up and group joins are not counted. Run::

    .venv/bin/python -m bench.pipeline --events 600000 --queues 1000 --queues 100000

Figures go to bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from streams.localkafka import Broker, free_port
from streams.settings import KafkaSettings, Settings
from streams.topic_reader import read_topic
from streams.topics import ensure_topics

INTERVAL_MS = 900_000
PARTITIONS = 6


def queue_names(n_queues: int) -> list[str]:
    return [f"q{i}" for i in range(n_queues)]


def generate(n_events: int, n_queues: int, start_ms: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """About ``n_events`` events as (key, value); one call = queued + outcome + ended."""
    rng = np.random.default_rng(seed)
    calls = n_events // 3
    # Zipf-like popularity over queues (s = 1.1), so a few queues are busy and most are not.
    weights = 1.0 / np.arange(1, n_queues + 1) ** 1.1
    queue_of_call = rng.choice(n_queues, size=calls, p=weights / weights.sum())
    span_ms = 4 * 3_600_000
    arrivals = np.sort(rng.integers(0, span_ms, size=calls)) + start_ms
    waits = rng.exponential(20_000, size=calls).astype(np.int64)
    talks = rng.lognormal(11.5, 0.5, size=calls).astype(np.int64)
    answered = rng.random(calls) < 0.85
    events = []
    for i in range(calls):
        queue = f"q{queue_of_call[i]}"
        key = f"acme/{queue}".encode()
        t = int(arrivals[i])
        base = {"tenant": "acme", "queue": queue, "call_id": f"c{i}"}
        events.append((t, key, {"event_id": f"q{i}", "type": "call.queued", "ts_ms": t, **base}))
        w = int(waits[i])
        if answered[i]:
            events.append((t + w, key, {"event_id": f"a{i}", "type": "call.answered",
                                        "ts_ms": t + w, **base, "agent_id": "a1", "wait_ms": w}))
            events.append((t + w + int(talks[i]), key, {
                "event_id": f"e{i}", "type": "call.ended", "ts_ms": t + w + int(talks[i]),
                **base, "agent_id": "a1", "talk_ms": int(talks[i])}))
        else:
            events.append((t + w, key, {"event_id": f"b{i}", "type": "call.abandoned",
                                        "ts_ms": t + w, **base, "wait_ms": w}))
    events.sort(key=lambda e: e[0])
    last = events[-1][0]
    # One event per partition far enough ahead that the partition clock closes every interval.
    closer_ts = last + INTERVAL_MS + 600_000
    closers = {}
    i = 0
    while len(closers) < PARTITIONS:
        key = f"acme/closer{i}".encode()
        closers.setdefault((murmur2(key) & 0x7FFFFFFF) % PARTITIONS, key)
        i += 1
    tail = [(closer_ts, key, {"event_id": f"close-{p}", "type": "call.queued", "ts_ms": closer_ts,
                              "tenant": "acme", "queue": key.decode().split("/")[1],
                              "call_id": f"close-{p}"}) for p, key in sorted(closers.items())]
    return [(key, orjson.dumps(event)) for _, key, event in events + tail]


async def produce_all(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024, compression_type=None)
    await producer.start()
    try:
        for start in range(0, len(messages), 20_000):
            futures = [await producer.send(topic, value, key=key)
                       for key, value in messages[start:start + 20_000]]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    """(a): seconds to getmany + orjson.loads every event."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        started = time.perf_counter()
        loads = orjson.loads
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                for record in records:
                    loads(record.value)
                seen += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def topic_times(bootstrap: str, topic: str, skip_key_prefix: bytes = b"\xff"
                      ) -> tuple[int, int, int]:
    """(count, first CreateTime, last CreateTime) over a whole topic, leaving out records
    whose key starts with ``skip_key_prefix``."""
    count, first, last = 0, None, None
    async with contextlib.aclosing(read_topic(KafkaSettings(bootstrap=bootstrap), topic,
                                   range(PARTITIONS), "bench")) as records:
        async for r in records:
            if r.key and r.key.startswith(skip_key_prefix):
                continue
            count += 1
            first = r.timestamp if first is None else min(first, r.timestamp)
            last = r.timestamp if last is None else max(last, r.timestamp)
    return count, first or 0, last or 0


async def await_records(bootstrap: str, topic: str, expected: int, skip_key_prefix: bytes,
                        worker: "WorkerProcess", timeout_s: float = 1800) -> None:
    """Follow ``topic`` until ``expected`` records (keys not starting with the prefix) are
    there. One consumer reads on from where it was: reading the whole topic again every
    second took a share of the two cores from the worker being measured."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        seen = 0
        while seen < expected:
            worker.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not publish every record within {timeout_s} s")
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                seen += sum(1 for r in records if not (r.key or b"").startswith(skip_key_prefix))
    finally:
        await consumer.stop()


def topic_config(settings: Settings) -> str:
    """The [topics], [ingest] and [worker] sections naming this run's topics and groups."""
    t = settings.topics
    names = "".join(f'{f.name} = "{getattr(t, f.name)}"\n' for f in dataclasses.fields(t)
                    if isinstance(getattr(t, f.name), str))
    return (f"[topics]\n{names}partitions = {t.partitions}\n"
            f'[ingest]\ngroup_id = "{settings.ingest.group_id}"\n'
            f'[worker]\napp_id = "{settings.worker.app_id}"\n')


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{self.log.read_text()[-3000:]}")


@contextlib.contextmanager
def run_worker_process(bootstrap: str, config: Path, log: Path, data_dir: Path
                       ) -> Iterator[WorkerProcess]:
    """``callslo worker --config config`` in its own process until the block ends (SIGTERM)."""
    env = {**os.environ, "CALLSLO_BOOTSTRAP": bootstrap, "CALLSLO_WEB_PORT": str(free_port()),
           "CALLSLO_DATA_DIR": str(data_dir)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--config", str(config)],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield WorkerProcess(proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def one_case(bootstrap: str, n_events: int, n_queues: int, workdir: Path,
             with_baseline: bool) -> dict[str, float]:
    tag = f"b{n_queues}-{os.getpid()}-{int(time.time())}"
    settings = Settings.from_mapping({
        "kafka": {"bootstrap": bootstrap},
        "topics": {"events": f"{tag}.events", "dlq": f"{tag}.dlq", "batches": f"{tag}.batches",
                   "intervals": f"{tag}.intervals", "realtime": f"{tag}.realtime",
                   "partitions": PARTITIONS},
        "ingest": {"group_id": f"{tag}-ingest"},
        "worker": {"app_id": f"{tag}-app"},
    }, env={})
    asyncio.run(ensure_topics(settings))
    start_ms = (int(time.time() * 1000) - 8 * 3_600_000) // INTERVAL_MS * INTERVAL_MS
    messages = generate(n_events, n_queues, start_ms)
    asyncio.run(produce_all(bootstrap, settings.topics.events, messages))
    result: dict[str, float] = {"events": len(messages)}

    raw_s = statistics.median(asyncio.run(raw_consume(bootstrap, settings.topics.events,
                                                      len(messages))) for _ in range(3))
    result["raw_events_per_s"] = len(messages) / raw_s

    t = settings.topics
    config = workdir / f"{tag}.toml"
    config.write_text(topic_config(settings))
    # Every (queue, interval) with events gives one record; count them from the generated data.
    # The closer events' own intervals close only by the idle rule: not waited for, not timed.
    closer = b"acme/closer"
    expected_records = len({(key, orjson.loads(value)["ts_ms"] // INTERVAL_MS)
                            for key, value in messages if not key.startswith(closer)})
    with run_worker_process(bootstrap, config, workdir / f"{tag}-worker.log",
                            workdir / f"{tag}-data") as worker:
        asyncio.run(await_records(bootstrap, t.intervals, expected_records, closer, worker))
    _, batch_first, _ = asyncio.run(topic_times(bootstrap, t.batches))
    n_records, _, record_last = asyncio.run(topic_times(bootstrap, t.intervals, closer))
    result["engine_events_per_s"] = len(messages) / max((record_last - batch_first) / 1000, 1e-3)
    result["records"] = n_records

    if with_baseline:
        from bench import faust_baseline

        result["faust_events_per_s"] = faust_baseline.run(bootstrap, t.events, len(messages),
                                                          workdir, PARTITIONS)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--queues", type=int, action="append", help="repeatable; default 1000")
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of starting one")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain Faust agent")
    args = parser.parse_args()
    broker = None
    bootstrap = args.bootstrap
    with tempfile.TemporaryDirectory(prefix="callslo-bench-") as tmp:
        workdir = Path(tmp)
        if bootstrap is None:
            broker = Broker(free_port(), workdir / "kafka")
            bootstrap = broker.start(fresh=True).bootstrap
        try:
            for n_queues in args.queues or [1000]:
                r = one_case(bootstrap, args.events, n_queues, workdir, not args.no_baseline)
                line = (f"queues={n_queues} events={r['events']:.0f} records={r['records']:.0f} "
                        f"raw={r['raw_events_per_s']:,.0f}/s engine={r['engine_events_per_s']:,.0f}/s "
                        f"engine/raw={r['engine_events_per_s'] / r['raw_events_per_s']:.2f}")
                if "faust_events_per_s" in r:
                    line += (f" faust-per-event={r['faust_events_per_s']:,.0f}/s "
                             f"engine/faust={r['engine_events_per_s'] / r['faust_events_per_s']:.1f}x")
                print(line, flush=True)
        finally:
            if broker is not None:
                broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
