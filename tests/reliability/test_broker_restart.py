"""The broker goes away mid-stream, twice (a clean stop, then kill -9), and comes back with its
data: the worker's final interval records equal `callslo replay`'s, field for field.

The test owns its broker (own port and directory). While the broker is down the feeder
holds its events, as an ACD adapter's producer does; a worker that gives up meanwhile is
restarted by the test as the deployment's supervisor would (docker-compose
``restart: unless-stopped``). ``idle_close_s`` stays at its default (60 s): an outage
shorter than that never closes an interval by the wall clock."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from streams.localkafka import Broker, free_port
from streams.replay import record_sort_key
from tests.integration.worker_process import Worker, wait_for_records, wait_for_topics
from tests.reliability.harness import (BASE_FAULTS, Feeder, Figures, Supervisor, compare,
                                       engine_settings, late_dead_letters, simulated_day)

pytestmark = pytest.mark.timeout(540)

STREAM_SEED = 7
IDLE_CLOSE_S = 60
#: When each outage starts (share of the stream sent) and how the broker goes down.
OUTAGES = ((0.3, "stop"), (0.65, "kill -9"))


def test_broker_stop_and_kill_mid_stream(make_settings, tmp_path):
    broker = Broker(free_port(), tmp_path / "kafka")
    broker.start(fresh=True)
    bootstrap = broker.bootstrap
    settings = engine_settings(make_settings, bootstrap, idle_close_s=IDLE_CLOSE_S)
    stream = simulated_day(STREAM_SEED)
    truth = stream.ground_truth(settings)
    worker = Worker(settings, tmp_path, bootstrap)
    supervisor = Supervisor(worker)
    feeder = Feeder(bootstrap, settings.topics.events, stream.messages, rate_per_s=900)

    def check() -> None:
        supervisor.check()
        feeder.check()

    outages_s = []
    try:
        worker.start()
        wait_for_topics(bootstrap, settings, worker.check_alive)
        feeder.start()
        for share, how in OUTAGES:
            while feeder.acknowledged < share * len(stream.messages):
                check()
                time.sleep(0.2)
            feeder.pause()
            down_at = time.monotonic()
            broker.stop() if how == "stop" else broker.kill()
            time.sleep(2)
            supervisor.check()
            broker.start()
            outages_s.append(round(time.monotonic() - down_at, 1))
            print(f"broker {how} at {feeder.acknowledged} of {len(stream.messages)} events; "
                  f"back after {outages_s[-1]} s", flush=True)
            feeder.resume()
            assert outages_s[-1] < IDLE_CLOSE_S, "the outage outlasted idle_close_s"
        feeder.join(timeout_s=300)
        wait_for_records(bootstrap, settings.topics.intervals, len(truth.records), check,
                         timeout_s=240)
        time.sleep(3)
        figures = Figures("broker_restart", events=len(stream.messages),
                          faults={"broker stop": 1, "broker kill -9": 1,
                                  "duplicates": stream.injected["duplicates"],
                                  "disorder_ms": BASE_FAULTS.disorder_ms},
                          extra={"outages_s": outages_s,
                                 "worker_exits": supervisor.exit_codes})
        final = compare(figures, truth, bootstrap, settings)
        late = late_dead_letters(bootstrap, settings)
    finally:
        feeder.pause()
        worker.ensure_stopped()
        broker.stop()
    assert figures.lost == 0 and figures.doubled == 0
    assert final == {record_sort_key(r): r for r in truth.records}
    assert Counter(late.values()) == Counter(e.event["event_id"] for e in truth.late)
