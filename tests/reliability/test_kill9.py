"""kill -9 the worker at random points while a simulated day flows in, restart it each time:
its final interval records equal `callslo replay`'s, field for field."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import pytest

from streams.replay import record_sort_key
from tests.integration.worker_process import Worker, wait_for_records, wait_for_topics
from tests.reliability.harness import (BASE_FAULTS, Feeder, Figures, changelog_topic, compare,
                                       end_offsets_total, engine_settings, late_dead_letters,
                                       simulated_day)

pytestmark = pytest.mark.timeout(480)

KILLS = 5
KILL_SEED = 8
STREAM_SEED = 3


def _state_writes(bootstrap: str, topic: str) -> int:
    try:
        return asyncio.run(end_offsets_total(bootstrap, topic))
    except AssertionError:  # the worker has not created its changelog yet
        return 0


def test_kill_9_at_random_points_loses_and_doubles_nothing(kafka_bootstrap, make_settings,
                                                            tmp_path):
    settings = engine_settings(make_settings, kafka_bootstrap, idle_close_s=20)
    stream = simulated_day(STREAM_SEED)
    truth = stream.ground_truth(settings)
    rng = random.Random(KILL_SEED)
    # Kill points spread over the whole stream: after this many events are sent, and once
    # the restarted worker has applied a batch again (so every kill hits a busy worker).
    kill_after = sorted(rng.sample(range(len(stream.messages) // 20,
                                         len(stream.messages) * 19 // 20), KILLS))
    print(f"\nkill -9 schedule (seed {KILL_SEED}): after {kill_after} events sent, each up to "
          "1 s after the worker's next state write")
    worker = Worker(settings, tmp_path, kafka_bootstrap)
    feeder = Feeder(kafka_bootstrap, settings.topics.events, stream.messages, rate_per_s=500)
    changelog = changelog_topic(settings)

    def check() -> None:
        worker.check_alive()
        feeder.check()

    worker.start()
    began = time.monotonic()
    try:
        wait_for_topics(kafka_bootstrap, settings, worker.check_alive)
        feeder.start()
        for n, after in enumerate(kill_after, start=1):
            before = _state_writes(kafka_bootstrap, changelog)
            deadline = time.monotonic() + 120
            while (feeder.acknowledged < after
                   or _state_writes(kafka_bootstrap, changelog) <= before):
                check()
                assert time.monotonic() < deadline, f"no progress:\n{worker.log_tail()}"
                time.sleep(0.2)
            delay_s = rng.uniform(0.0, 1.0)
            time.sleep(delay_s)
            worker.kill()
            print(f"kill -9 #{n} at {time.monotonic() - began:.1f} s, {feeder.acknowledged} of "
                  f"{len(stream.messages)} events sent", flush=True)
            worker.start()
        feeder.join(timeout_s=300)
        wait_for_records(kafka_bootstrap, settings.topics.intervals, len(truth.records), check)
        time.sleep(3)  # nothing may follow: a late extra record would be a double
        figures = Figures("kill9", events=len(stream.messages),
                          faults={"kill -9": KILLS, "duplicates": stream.injected["duplicates"],
                                  "disorder_ms": BASE_FAULTS.disorder_ms},
                          extra={"worker_starts": worker.starts, "kill_seed": KILL_SEED})
        final = compare(figures, truth, kafka_bootstrap, settings)
        late = late_dead_letters(kafka_bootstrap, settings)
    finally:
        feeder.pause()
        code = worker.stop() if worker.running else None
    assert figures.lost == 0 and figures.doubled == 0
    assert final == {record_sort_key(r): r for r in truth.records}
    assert Counter(late.values()) == Counter(e.event["event_id"] for e in truth.late)
    assert code == 0, worker.log_tail()
