"""The worker on the real broker gives the same final interval records as `callslo replay`."""

from __future__ import annotations

import asyncio
import io
import random
import time

import orjson
import pytest

from streams.peek import print_interval_records
from streams.replay import record_sort_key, replay_lines
from tests.eventgen import call_events
from tests.integration.kafka_helpers import event_message, now_ms, produce, read_all
from tests.integration.worker_process import Worker, wait_for_records, wait_for_topics

pytestmark = pytest.mark.timeout(420)


#: One hour, the shortest: an FCR record is final a window after its interval.
FCR_WINDOW = {"fcr_window_s": 3600}


def test_worker_records_equal_replay(kafka_bootstrap, make_settings, tmp_path):
    settings = make_settings(kafka_bootstrap, slo=FCR_WINDOW)
    # Three hours ago, so every interval is closed by its watermark or by the idle rule, and
    # every FCR record is final (its window ends more than an hour ago).
    start = (now_ms() - 3 * 3_600_000) // 900_000 * 900_000
    events = call_events(start, 1500, queues=4, duplicates=0.03, disorder_ms=30_000, late=0.02,
                         callers=60)
    expected = replay_lines((orjson.dumps(e) for e in events), settings)
    assert expected.counts["duplicates"] > 0 and expected.counts["late"] > 0
    expected_records = {record_sort_key(r): r for r in expected.records}
    expected_fcr = {record_sort_key(r): r for r in expected.fcr_records}
    # Repeat callers across queues, so across partitions: the FCR stage's marks matter.
    assert sum(r["unresolved_calls"] for r in expected.fcr_records) > 100

    worker = Worker(settings, tmp_path, kafka_bootstrap)
    worker.start()
    try:
        wait_for_topics(kafka_bootstrap, settings, worker.check_alive)
        asyncio.run(produce(kafka_bootstrap, settings.topics.events,
                            [event_message(e) for e in events]))
        final = wait_for_records(kafka_bootstrap, settings.topics.intervals, len(expected_records),
                                 worker.check_alive)
        time.sleep(3)  # nothing more may follow
        final = wait_for_records(kafka_bootstrap, settings.topics.intervals, len(expected_records),
                                 worker.check_alive)
        assert final == expected_records
        fcr = wait_for_records(kafka_bootstrap, settings.topics.fcr, len(expected_fcr),
                               worker.check_alive)
        assert fcr == expected_fcr
        # `callslo records --json` shows the same records
        shown = io.StringIO()
        asyncio.run(print_interval_records(settings, follow=False, as_json=True, out=shown))
        assert {record_sort_key(r): r for r in map(orjson.loads, shown.getvalue().splitlines())
                } == expected_records
        late = [r for r in asyncio.run(read_all(kafka_bootstrap, settings.topics.dlq))
                if dict(r.headers)["callslo.reason"] == b"late"]
        assert len(late) == expected.counts["late"]
        # A late dead letter is the message as it came, read back from the events topic.
        sent = {(r.partition, r.offset): r
                for r in asyncio.run(read_all(kafka_bootstrap, settings.topics.events))}
        for record in late:
            headers = dict(record.headers)
            assert "callslo.value" not in headers  # not rebuilt from the batch
            source = sent[int(headers["callslo.source.partition"]),
                          int(headers["callslo.source.offset"])]
            assert (record.key, record.value) == (source.key, source.value)
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()


def _record_count(bootstrap: str, topic: str) -> int:
    return len(asyncio.run(read_all(bootstrap, topic)))


def test_kill_9_mid_stream_loses_and_doubles_nothing(kafka_bootstrap, make_settings, tmp_path):
    settings = make_settings(kafka_bootstrap, ingest={"batch_max_events": 200}, slo=FCR_WINDOW)
    # Five hours of calls, seven to two hours ago: each fifth closes intervals by its
    # watermarks, well before a partition is quiet long enough (idle_close_s) for the wall
    # clock to count; the FCR window of the last calls ends an hour ago.
    start = (now_ms() - 7 * 3_600_000) // 900_000 * 900_000
    events = call_events(start, 3000, queues=5, seed=11, duplicates=0.02, gap_ms=6000,
                         callers=80)
    replayed = replay_lines((orjson.dumps(e) for e in events), settings)
    expected = {record_sort_key(r): r for r in replayed.records}
    expected_fcr = {record_sort_key(r): r for r in replayed.fcr_records}
    messages = [event_message(e) for e in events]
    rng = random.Random(5)
    worker = Worker(settings, tmp_path, kafka_bootstrap)
    worker.start()
    wait_for_topics(kafka_bootstrap, settings, worker.check_alive)
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
        final = wait_for_records(kafka_bootstrap, settings.topics.intervals, len(expected),
                                 worker.check_alive)
        time.sleep(3)
        final = wait_for_records(kafka_bootstrap, settings.topics.intervals, len(expected),
                                 worker.check_alive)
        assert kills == 4
        assert final == expected
        # Contacts sent again after each kill are recognised: no count lost or doubled.
        assert wait_for_records(kafka_bootstrap, settings.topics.fcr, len(expected_fcr),
                                worker.check_alive) == expected_fcr
    finally:
        worker.stop()
