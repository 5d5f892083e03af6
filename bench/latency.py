"""Latency from an event to the realtime record that reflects it, at a steady event rate.

A producer sends live call lifecycles (queued now, answered ~20 s later, ended after the
talk) at ``--rate`` events/s for ``--seconds`` over ``--queues`` queues, each event stamped
``ts_ms`` = the moment it is sent. The ``callslo worker`` runs with
``engine.realtime_interval_s`` = ``--realtime-interval-s``. Afterwards every realtime record
is read back: an event of queue Q at time T is reflected by the first realtime record of Q
whose ``as_of_ms`` >= T (the clock of the snapshot has reached the event), and its latency
is that record's broker timestamp minus T. Run::

    .venv/bin/python -m bench.latency --rate 20000 --seconds 30

Figures go to bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import heapq
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer

from bench.pipeline import run_worker_process, topic_config
from streams.localkafka import Broker, free_port
from streams.publish import send_keyed
from streams.settings import KafkaSettings, Settings
from streams.topic_reader import read_topic
from streams.topics import ensure_topics

PARTITIONS = 6


async def produce_live(bootstrap: str, topic: str, rate: int, seconds: float, n_queues: int,
                       seed: int = 1) -> tuple[list[tuple[int, str]], float]:
    """Send call lifecycles at ``rate`` events/s; returns (ts_ms, queue) of every event and
    the rate achieved."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_queues + 1) ** 1.1
    calls = int(rate * seconds) + rate  # an upper bound: outcomes fill part of each tick
    queue_of_call = rng.choice(n_queues, size=calls, p=weights / weights.sum()).tolist()
    waits_s = rng.exponential(15.0, size=calls).tolist()
    talks_s = rng.exponential(60.0, size=calls).tolist()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=512 * 1024)
    await producer.start()
    sent: list[tuple[int, str]] = []
    # Events are serialised once without their time; sending prefixes ``"ts_ms":<now>``.
    pending: list[tuple[float, int, bytes, bytes, str]] = []  # (due, order, key, rest, queue)
    futures = []
    started = time.monotonic()
    tick_s = 0.01
    call = 0

    def rest(event: dict) -> bytes:
        return orjson.dumps(event)[1:]

    try:
        while time.monotonic() - started < seconds:
            tick_start = time.monotonic()
            # What the rate owes by now, so a slow tick is made up by the next one.
            budget = int(rate * (tick_start - started)) - len(sent)
            batch: list[tuple[bytes, bytes, str]] = []
            while pending and pending[0][0] <= tick_start and len(batch) < budget:
                _, _, key, body, queue = heapq.heappop(pending)
                batch.append((key, body, queue))
            while len(batch) < budget:
                queue = f"q{queue_of_call[call]}"
                key = f"acme/{queue}".encode()
                base = {"tenant": "acme", "queue": queue, "call_id": f"c{call}"}
                batch.append((key, rest({"event_id": f"q{call}", "type": "call.queued", **base}),
                              queue))
                wait_s, talk_s = waits_s[call], talks_s[call]
                heapq.heappush(pending, (tick_start + wait_s, 2 * call, key, rest({
                    "event_id": f"a{call}", "type": "call.answered", **base, "agent_id": "a1",
                    "wait_ms": int(wait_s * 1000)}), queue))
                heapq.heappush(pending, (tick_start + wait_s + talk_s, 2 * call + 1, key, rest({
                    "event_id": f"e{call}", "type": "call.ended", **base, "agent_id": "a1",
                    "talk_ms": int(talk_s * 1000)}), queue))
                call += 1
            now_ms = int(time.time() * 1000)
            prefix = b'{"ts_ms":%d,' % now_ms
            sent += [(now_ms, queue) for _, _, queue in batch]
            # One record batch per partition and tick: a send per event capped this
            # generator at ~14 000 events/s on the development VM.
            futures += await send_keyed(producer, topic, [
                (key, prefix + body, []) for key, body, _ in batch])
            if len(futures) > 1_000:
                await asyncio.gather(*futures)
                futures = []
            await asyncio.sleep(max(0.0, tick_s - (time.monotonic() - tick_start)))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent, len(sent) / (time.monotonic() - started)


async def realtime_marks(bootstrap: str, topic: str) -> dict[str, tuple[list[int], list[int]]]:
    """Per queue: (as_of_ms list, broker timestamp list), in as_of order."""
    marks: dict[str, list[tuple[int, int]]] = defaultdict(list)
    async with contextlib.aclosing(read_topic(KafkaSettings(bootstrap=bootstrap), topic,
                                              range(PARTITIONS), "bench")) as records:
        async for r in records:
            value = orjson.loads(r.value)
            marks[value["queue"]].append((value["as_of_ms"], r.timestamp))
    out = {}
    for queue, items in marks.items():
        items.sort()
        # A later record with an earlier timestamp cannot be "the first to reflect" anything
        # before an earlier one; keep the running minimum of timestamps from the right.
        as_of = [a for a, _ in items]
        stamps = [t for _, t in items]
        for i in range(len(stamps) - 2, -1, -1):
            stamps[i] = min(stamps[i], stamps[i + 1])
        out[queue] = (as_of, stamps)
    return out


def latencies_ms(sent: list[tuple[int, str]], marks: dict[str, tuple[list[int], list[int]]]
                 ) -> tuple[np.ndarray, int]:
    values, missing = [], 0
    for ts_ms, queue in sent:
        as_of, stamps = marks.get(queue, ([], []))
        i = bisect.bisect_left(as_of, ts_ms)
        if i == len(as_of):
            missing += 1
        else:
            values.append(stamps[i] - ts_ms)
    return np.asarray(values, dtype=np.int64), missing


def _by_tenth(sent: list[tuple[int, str]], marks: dict[str, tuple[list[int], list[int]]]):
    """Median latency per tenth of the run: shows whether the worker keeps up or falls behind."""
    step = max(1, len(sent) // 10)
    for i in range(0, len(sent), step):
        values, missing = latencies_ms(sent[i:i + step], marks)
        median = float(np.median(values)) / 1000 if values.size else float("nan")
        yield f"events {i}-{i + step}", f"median {median:.2f} s, unreflected {missing}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--queues", type=int, default=1000)
    parser.add_argument("--realtime-interval-s", type=float, default=1.0)
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of starting one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="callslo-latency-") as tmp:
        workdir = Path(tmp)
        broker = None
        bootstrap = args.bootstrap
        if bootstrap is None:
            broker = Broker(free_port(), workdir / "kafka")
            bootstrap = broker.start(fresh=True).bootstrap
        try:
            tag = f"lat-{os.getpid()}-{int(time.time())}"
            settings = Settings.from_mapping({
                "kafka": {"bootstrap": bootstrap},
                "topics": {"events": f"{tag}.events", "dlq": f"{tag}.dlq",
                           "batches": f"{tag}.batches", "intervals": f"{tag}.intervals",
                           "realtime": f"{tag}.realtime", "partitions": PARTITIONS},
                "ingest": {"group_id": f"{tag}-ingest"},
                "worker": {"app_id": f"{tag}-app"},
            }, env={})
            asyncio.run(ensure_topics(settings))
            config = workdir / "worker.toml"
            config.write_text(topic_config(settings) + "[engine]\nrealtime_interval_s = "
                              f"{args.realtime_interval_s}\n")
            with run_worker_process(bootstrap, config, workdir / "worker.log",
                                    workdir / "data") as worker:
                time.sleep(15)  # group joins and first assignment, not measured
                worker.check()
                sent, achieved = asyncio.run(produce_live(
                    bootstrap, settings.topics.events, args.rate, args.seconds, args.queues))
                time.sleep(5)
                worker.check()
            marks = asyncio.run(realtime_marks(bootstrap, settings.topics.realtime))
            values, missing = latencies_ms(sent, marks)
            p50, p99 = np.percentile(values, [50, 99]) if values.size else (float("nan"),) * 2
            for label, part in _by_tenth(sent, marks):
                print(f"  {label}: {part}", flush=True)
            print(f"rate={achieved:,.0f}/s events={len(sent)} queues={args.queues} "
                  f"realtime_interval_s={args.realtime_interval_s} "
                  f"latency p50={p50 / 1000:.2f} s p99={p99 / 1000:.2f} s "
                  f"max={values.max() / 1000 if values.size else float('nan'):.2f} s "
                  f"unreflected={missing}", flush=True)
        finally:
            if broker is not None:
                broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
