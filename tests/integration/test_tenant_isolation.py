"""Tenants are isolated: two tenants with the same queue names, through one worker on the real
broker, give each tenant exactly the records its own events alone give (issue: security)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from streams.replay import record_sort_key, replay_lines
from tests.eventgen import call_events
from tests.integration.kafka_helpers import event_message, now_ms, produce, read_all
from tests.integration.worker_process import Worker, wait_for_records, wait_for_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


def test_colliding_queue_names_never_mix_tenants(kafka_bootstrap, make_settings, tmp_path):
    settings = make_settings(kafka_bootstrap)
    start = (now_ms() - 3 * 3_600_000) // 900_000 * 900_000
    # The same queue names q0..q2 under both tenants, with different traffic and event ids.
    acme = call_events(start, 600, queues=3, tenants=("acme",), seed=1)
    globex = call_events(start + 700, 900, queues=3, tenants=("globex",), seed=2, gap_ms=1000)
    merged = sorted(acme + globex, key=lambda e: e["ts_ms"])
    # Ground truth per tenant from that tenant's events alone.
    expected = {record_sort_key(r): r
                for events in (acme, globex)
                for r in replay_lines((orjson.dumps(e) for e in events), settings).records}
    assert {k for k in expected if k[0] == "acme"} and {k for k in expected if k[0] == "globex"}
    assert {k[1] for k in expected if k[0] == "acme"} == {k[1] for k in expected
                                                         if k[0] == "globex"}

    worker = Worker(settings, tmp_path, kafka_bootstrap)
    worker.start()
    try:
        wait_for_topics(kafka_bootstrap, settings, worker.check_alive)
        asyncio.run(produce(kafka_bootstrap, settings.topics.events,
                            [event_message(e) for e in merged]))
        final = wait_for_records(kafka_bootstrap, settings.topics.intervals, len(expected),
                                 worker.check_alive)
        time.sleep(2)
        final = wait_for_records(kafka_bootstrap, settings.topics.intervals, len(expected),
                                 worker.check_alive)
        assert final == expected
        # Every realtime snapshot sits under its own tenant's key.
        for record in asyncio.run(read_all(kafka_bootstrap, settings.topics.realtime)):
            value = orjson.loads(record.value)
            assert record.key == f"{value['tenant']}/{value['queue']}".encode()
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
