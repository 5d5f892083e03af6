"""The hostile corpus on the real broker: a worker process fed bad input between valid events
dead-letters each bad message once, with its reason and original bytes, counts every valid
event as replay does, commits every partition to its end, and keeps its memory bounded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from streams import clients
from streams.contract import event_key
from streams.replay import record_sort_key, replay_lines
from streams.settings import KafkaSettings
from tests.eventgen import call_events
from tests.integration.kafka_helpers import now_ms, read_all
from tests.integration.worker_process import Worker, wait_for_records, wait_for_topics
from tests.unit.fuzz.corpus import hostile_messages

pytestmark = pytest.mark.timeout(480)

#: Growth of the worker's peak RSS (VmHWM) allowed after a warm-up, while it works through the
#: corpus (about 26 MB, two messages of 10 MB). Measured: about 80 MiB, the 10 MB messages
#: held a few times over (fetch buffer, record, DLQ produce batch). The bound is twice that:
#: it catches a worker that parses oversized messages, keeps what it dead-lettered across
#: polls, or multiplies a poll in memory; a single retained copy of the corpus would fit
#: under it, so that is not what this checks.
RSS_GROWTH_LIMIT_KB = 160 * 1024


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {field}")


async def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None,
                                                                     int | None]]):
    """Send ``(key, value, partition)`` in order (``None``: the key's partition); return
    ``(partition, offset)`` of each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                max_request_size=clients.MAX_REQUEST_BYTES)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key, partition=partition)
                   for key, value, partition in messages]
        return [(m.partition, m.offset) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


async def _lag(bootstrap: str, group_id: str, topic: str, partitions: int
               ) -> dict[int, int] | None:
    """Per partition: end offset minus the group's committed offset; ``None`` while the
    broker cannot tell yet (the group's coordinator is still being elected)."""
    admin = clients.admin(KafkaSettings(bootstrap=bootstrap))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id)
    except KafkaError as exc:
        if exc.retriable:
            return None
        raise
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: ends[tp] - (committed[tp].offset if tp in committed else 0)
            for tp in tps}


def test_hostile_corpus_through_the_worker(kafka_bootstrap, make_settings, tmp_path):
    settings = make_settings(kafka_bootstrap)
    partitions = settings.topics.partitions
    # Two hours ago, so every interval is closed by its watermark or by the idle rule; the
    # corpus's valid events fall in the first interval, with the generated calls.
    start = (now_ms() - 2 * 3_600_000) // 900_000 * 900_000
    corpus = hostile_messages(start + 300_000)
    generated = call_events(start, 200, queues=3, seed=3)
    hostile = [case for case in corpus if case.reason is not None]
    tolerated = [case for case in corpus if case.reason is None]
    assert len(hostile) > 400 and len(tolerated) > 20

    # Valid messages go to their key's partition (as replay routes them); the hostile ones
    # round-robin over every partition, between the valid ones.
    valid = [(event_key({"tenant": "default", **e}).encode(), orjson.dumps(e)) for e in generated]
    valid += [(case.key, case.value) for case in tolerated]
    messages: list[tuple[bytes | None, bytes | None, int | None]] = []
    expected_dead: dict[int, object] = {}  # index in messages -> case
    messages.extend((k, v, None) for k, v in valid[:40])  # warm-up, see below
    step = max(1, (len(valid) - 40) // len(hostile))
    for i, case in enumerate(hostile):
        messages.extend((k, v, None) for k, v in valid[40 + i * step:40 + (i + 1) * step])
        expected_dead[len(messages)] = case
        messages.append((case.key, case.value, i % partitions))
    messages.extend((k, v, None) for k, v in valid[40 + len(hostile) * step:])
    valid_values = [v for i, (_, v, _) in enumerate(messages) if i not in expected_dead]
    assert valid_values == [v for _, v in valid]

    expected = replay_lines(valid_values, settings)
    assert not expected.dead_letters and expected.records
    expected_records = {record_sort_key(r): r for r in expected.records}

    worker = Worker(settings, tmp_path, kafka_bootstrap)
    worker.start()
    try:
        wait_for_topics(kafka_bootstrap, settings, worker.check_alive)
        # Warm up on the first valid messages (stage 2 compiles its kernels on its first
        # batch), so the baseline is a working worker's and the growth is the corpus's.
        warm = next(i for i in range(len(messages)) if i in expected_dead)
        positions = asyncio.run(_produce(kafka_bootstrap, settings.topics.events,
                                         messages[:warm]))
        deadline = time.monotonic() + 120
        while any((asyncio.run(_lag(kafka_bootstrap, settings.ingest.group_id,
                                    settings.topics.events, partitions)) or {0: 1}).values()):
            worker.check_alive()
            assert time.monotonic() < deadline, f"warm-up not consumed:\n{worker.log_tail()}"
            time.sleep(0.5)
        time.sleep(5)
        baseline_kb = _kb(worker.proc.pid, "VmHWM")
        positions += asyncio.run(_produce(kafka_bootstrap, settings.topics.events,
                                          messages[warm:]))
        assert {positions[i][0] for i in expected_dead} == set(range(partitions))

        final = wait_for_records(kafka_bootstrap, settings.topics.intervals,
                                 len(expected_records), worker.check_alive, timeout_s=240)
        time.sleep(3)  # nothing more may follow
        final = wait_for_records(kafka_bootstrap, settings.topics.intervals,
                                 len(expected_records), worker.check_alive)
        assert final == expected_records

        # No partition stalls: stage 1 committed every partition to its end.
        lag = asyncio.run(_lag(kafka_bootstrap, settings.ingest.group_id, settings.topics.events,
                               partitions))
        assert lag == {p: 0 for p in range(partitions)}, lag

        dlq = asyncio.run(read_all(kafka_bootstrap, settings.topics.dlq))
        stage1 = [r for r in dlq
                  if dict(r.headers)["callslo.source.topic"] == settings.topics.events.encode()]
        late = [r for r in dlq if dict(r.headers)["callslo.reason"] == b"late"]
        assert len(late) == expected.counts["late"]
        by_position: dict[tuple[int, int], list] = {}
        for record in stage1:
            headers = dict(record.headers)
            if headers["callslo.reason"] == b"late":
                continue
            source = (int(headers["callslo.source.partition"]),
                      int(headers["callslo.source.offset"]))
            by_position.setdefault(source, []).append(record)
        wanted = {positions[i]: case for i, case in expected_dead.items()}
        assert set(by_position) == set(wanted), "dead letters for other messages, or missing"
        for source, records in by_position.items():
            case = wanted[source]
            assert len(records) == 1, f"{case.name} dead-lettered {len(records)} times"
            record = records[0]
            headers = dict(record.headers)
            assert headers["callslo.reason"] == case.reason.encode(), case.name
            assert headers.get("callslo.field") == (case.field.encode() if case.field else None)
            assert record.value == (case.value if case.value is not None else b""), case.name
            assert record.key == case.key and record.partition == source[0], case.name

        grown_kb = _kb(worker.proc.pid, "VmHWM") - baseline_kb
        assert grown_kb < RSS_GROWTH_LIMIT_KB, (
            f"worker peak RSS grew by {grown_kb // 1024} MiB (baseline {baseline_kb // 1024} MiB)")
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
