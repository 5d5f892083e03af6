"""The worker on the real broker gives the same final interval records as `callslo replay`."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from streams.contract import event_key
from streams.localkafka import free_port
from streams.peek import print_interval_records
from streams.replay import record_sort_key, replay_lines
from tests.eventgen import call_events
from tests.integration.kafka_helpers import now_ms, produce, read_all, topic_exists

pytestmark = pytest.mark.timeout(420)


class Worker:
    """`callslo worker` in its own process, as an operator runs it."""

    def __init__(self, settings, tmp_path: Path, bootstrap: str, name: str = "w1") -> None:
        t = settings.topics
        self.config = tmp_path / "callslo.toml"
        # Every topic name of the test's settings, so workers of different tests sharing the
        # session's broker never see each other's records.
        names = "".join(f'{f.name} = "{getattr(t, f.name)}"\n' for f in dataclasses.fields(t)
                        if isinstance(getattr(t, f.name), str))
        self.config.write_text(
            f'[topics]\n{names}partitions = {t.partitions}\n'
            f'[ingest]\ngroup_id = "{settings.ingest.group_id}"\n'
            f'[worker]\napp_id = "{settings.worker.app_id}"\n')
        self.env = {**os.environ, "CALLSLO_BOOTSTRAP": bootstrap,
                    "CALLSLO_DATA_DIR": str(tmp_path / f"data-{name}")}
        self.log_path = tmp_path / f"worker-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**self.env, "CALLSLO_WEB_PORT": str(free_port())}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--config", str(self.config)],
                env=env, stdout=log, stderr=subprocess.STDOUT)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def check_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, (
            f"worker exited:\n{self.log_tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"worker ignored SIGTERM:\n{self.log_tail()}")


def _messages(events):
    return [(event_key({"tenant": "default", **e}).encode(), orjson.dumps(e)) for e in events]


def _final_records(records) -> dict:
    """One record per (tenant, queue, interval start); a re-published copy must be identical."""
    final = {}
    for record in records:
        value = orjson.loads(record.value)
        key = record_sort_key(value)
        assert record.key == f"{value['tenant']}/{value['queue']}".encode()
        if key in final:
            assert final[key] == value, f"two different records for {key}"
        final[key] = value
    return final


def _wait_for_records(worker: Worker, bootstrap: str, topic: str, expected: int,
                      timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        worker.check_alive()
        final = _final_records(asyncio.run(read_all(bootstrap, topic)))
        if len(final) >= expected:
            return final
        assert time.monotonic() < deadline, (
            f"{len(final)} of {expected} interval records after {timeout_s} s:\n{worker.log_tail()}")
        time.sleep(1)


def _wait_for_topics(worker: Worker, bootstrap: str, settings) -> None:
    deadline = time.monotonic() + 90
    t = settings.topics
    while not all(asyncio.run(topic_exists(bootstrap, name))
                  for name in (t.events, t.batches, t.intervals)):
        worker.check_alive()
        assert time.monotonic() < deadline, f"topics not created:\n{worker.log_tail()}"
        time.sleep(0.5)


def test_worker_records_equal_replay(kafka_bootstrap, make_settings, tmp_path):
    settings = make_settings(kafka_bootstrap)
    # Three hours ago, so every interval is closed by its watermark or by the idle rule.
    start = (now_ms() - 3 * 3_600_000) // 900_000 * 900_000
    events = call_events(start, 1500, queues=4, duplicates=0.03, disorder_ms=30_000, late=0.02)
    expected = replay_lines((orjson.dumps(e) for e in events), settings)
    assert expected.counts["duplicates"] > 0 and expected.counts["late"] > 0
    expected_records = {record_sort_key(r): r for r in expected.records}

    worker = Worker(settings, tmp_path, kafka_bootstrap)
    worker.start()
    try:
        _wait_for_topics(worker, kafka_bootstrap, settings)
        asyncio.run(produce(kafka_bootstrap, settings.topics.events, _messages(events)))
        final = _wait_for_records(worker, kafka_bootstrap, settings.topics.intervals,
                                  len(expected_records))
        time.sleep(3)  # nothing more may follow
        final = _wait_for_records(worker, kafka_bootstrap, settings.topics.intervals,
                                  len(expected_records))
        assert final == expected_records
        # `callslo records --json` shows the same records
        shown = io.StringIO()
        asyncio.run(print_interval_records(settings, follow=False, as_json=True, out=shown))
        assert {record_sort_key(r): r for r in map(orjson.loads, shown.getvalue().splitlines())
                } == expected_records
        late = [r for r in asyncio.run(read_all(kafka_bootstrap, settings.topics.dlq))
                if dict(r.headers)["callslo.reason"] == b"late"]
        assert len(late) == expected.counts["late"]
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()


def _record_count(bootstrap: str, topic: str) -> int:
    return len(asyncio.run(read_all(bootstrap, topic)))


def test_kill_9_mid_stream_loses_and_doubles_nothing(kafka_bootstrap, make_settings, tmp_path):
    settings = make_settings(kafka_bootstrap, ingest={"batch_max_events": 200})
    # Five hours of calls, six to one hour ago: each fifth closes intervals by its watermarks,
    # well before a partition is quiet long enough (idle_close_s) for the wall clock to count.
    start = (now_ms() - 6 * 3_600_000) // 900_000 * 900_000
    events = call_events(start, 3000, queues=5, seed=11, duplicates=0.02, gap_ms=6000)
    expected = {record_sort_key(r): r
                for r in replay_lines((orjson.dumps(e) for e in events), settings).records}
    messages = _messages(events)
    rng = random.Random(5)
    worker = Worker(settings, tmp_path, kafka_bootstrap)
    worker.start()
    _wait_for_topics(worker, kafka_bootstrap, settings)
    chunks = [messages[i * len(messages) // 5:(i + 1) * len(messages) // 5] for i in range(5)]
    kills = 0
    try:
        for chunk in chunks[:4]:
            before = _record_count(kafka_bootstrap, settings.topics.intervals)
            asyncio.run(produce(kafka_bootstrap, settings.topics.events, chunk))
            # Kill while the worker is busy: once it has published something from this chunk.
            deadline = time.monotonic() + 50
            while _record_count(kafka_bootstrap, settings.topics.intervals) <= before:
                worker.check_alive()
                assert time.monotonic() < deadline, f"no progress:\n{worker.log_tail()}"
                time.sleep(0.2)
            time.sleep(rng.uniform(0.0, 1.0))
            worker.kill()
            kills += 1
            worker.start()
        asyncio.run(produce(kafka_bootstrap, settings.topics.events, chunks[4]))
        final = _wait_for_records(worker, kafka_bootstrap, settings.topics.intervals, len(expected))
        time.sleep(3)
        final = _wait_for_records(worker, kafka_bootstrap, settings.topics.intervals, len(expected))
        assert kills == 4
        assert final == expected
    finally:
        worker.stop()
