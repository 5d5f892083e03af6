"""Workers join and leave the group mid-stream: partitions move between processes and their
queue state moves with them through the changelog. The final interval records equal
`callslo replay`'s, field for field.

Worker a runs throughout; b joins and later leaves cleanly (SIGTERM); c joins and later dies
(kill -9). Each worker has its own data directory and web port, as on separate hosts."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from streams.replay import record_sort_key
from tests.integration.worker_process import Worker, wait_for_records, wait_for_topics
from tests.reliability.harness import (BASE_FAULTS, Feeder, Figures, compare, engine_settings,
                                       late_dead_letters, simulated_day)

pytestmark = pytest.mark.timeout(480)

STREAM_SEED = 11
_READY = re.compile(r"engine: partition (\d+) ready, (\d+) queues from (\d+) shards")


def _restored_shards(worker: Worker) -> list[tuple[int, int]]:
    """(partition, shards loaded from the table) each time the worker took up a partition."""
    text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
    return [(int(p), int(shards)) for p, _, shards in _READY.findall(text)]


def test_workers_joining_and_leaving_mid_stream(kafka_bootstrap, make_settings, tmp_path):
    settings = engine_settings(make_settings, kafka_bootstrap, idle_close_s=20)
    stream = simulated_day(STREAM_SEED)
    truth = stream.ground_truth(settings)
    workers = {name: Worker(settings, tmp_path, kafka_bootstrap, name) for name in "abc"}
    a, b, c = workers.values()
    feeder = Feeder(kafka_bootstrap, settings.topics.events, stream.messages, rate_per_s=600)
    running: set[str] = set()

    def check() -> None:
        for name in running:
            workers[name].check_alive()
        feeder.check()

    def when_sent(share: float) -> None:
        while feeder.acknowledged < share * len(stream.messages):
            check()
            time.sleep(0.2)

    def until_working(worker: Worker, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while not _restored_shards(worker):
            check()
            assert time.monotonic() < deadline, f"{worker.name} got no partition in time"
            time.sleep(0.3)

    codes = {}
    try:
        a.start()
        running.add("a")
        wait_for_topics(kafka_bootstrap, settings, a.check_alive)
        feeder.start()
        when_sent(0.15)
        b.start()
        running.add("b")
        until_working(b)
        when_sent(0.4)
        running.discard("b")
        codes["b"] = b.stop()
        when_sent(0.55)
        c.start()
        running.add("c")
        until_working(c)
        when_sent(0.75)
        running.discard("c")
        c.kill()
        print(f"rebalance: b took {_restored_shards(b)}, c took {_restored_shards(c)} "
              "(partition, shards restored)", flush=True)
        feeder.join(timeout_s=300)
        wait_for_records(kafka_bootstrap, settings.topics.intervals, len(truth.records), check)
        time.sleep(3)
        figures = Figures("rebalance", events=len(stream.messages),
                          faults={"worker joins": 2, "worker leaves (SIGTERM)": 1,
                                  "worker dies (kill -9)": 1,
                                  "duplicates": stream.injected["duplicates"],
                                  "disorder_ms": BASE_FAULTS.disorder_ms},
                          extra={"b_took": _restored_shards(b), "c_took": _restored_shards(c)})
        final = compare(figures, truth, kafka_bootstrap, settings)
        late = late_dead_letters(kafka_bootstrap, settings)
    finally:
        feeder.pause()
        for worker in workers.values():
            worker.ensure_stopped()
    codes["a"] = a.proc.returncode if a.proc else None
    assert figures.lost == 0 and figures.doubled == 0
    assert final == {record_sort_key(r): r for r in truth.records}
    assert Counter(late.values()) == Counter(e.event["event_id"] for e in truth.late)
    # The joining workers took up partitions whose state was already in the changelog.
    assert any(shards for _, shards in _restored_shards(b) + _restored_shards(c))
    assert codes == {"b": 0, "a": 0}, {w.name: w.log_tail() for w in (a, b)}
