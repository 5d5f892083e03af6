"""Dirty input from the simulator's fault injection: duplicates, disorder within the allowed
lateness, events delivered late beyond it, and malformed lines. Late events go to the
dead-letter topic with reason `late` and are never applied; the records equal replay's of
the same arrival order, and also replay's of the stream without the late events."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from streams.replay import record_sort_key, replay_lines
from streams.simulate.faults import DUPLICATE_DELAY_MS, MALFORMED_KINDS, FaultSpec
from tests.integration.kafka_helpers import read_all
from tests.integration.worker_process import Worker, wait_for_records, wait_for_topics
from tests.reliability.harness import (Feeder, Figures, compare, engine_settings,
                                       late_dead_letters, simulated_day)

pytestmark = pytest.mark.timeout(300)

STREAM_SEED = 5
FAULTS = FaultSpec(duplicates=0.02, disorder_ms=60_000, late=0.003, late_delay_ms=1_800_000,
                   malformed=0.002)


def _delivered_late(items) -> list[int]:
    """Positions of the call events the injector delivered late: further behind the latest
    event time delivered before them than disorder or a duplicate's delay can put an event.
    (Late agent events are not counted: agent.state changes an agent's current state, which
    has no interval to close, so the engine never judges it late.)"""
    bound_ms = max(FAULTS.disorder_ms, DUPLICATE_DELAY_MS)
    latest_ms = -1
    late = []
    for position, item in enumerate(items):
        if type(item) is not dict:
            continue  # a malformed line
        if latest_ms - item["ts_ms"] > bound_ms and item["type"] != "agent.state":
            late.append(position)
        latest_ms = max(latest_ms, item["ts_ms"])
    return late


def test_duplicates_disorder_and_late_events(kafka_bootstrap, make_settings, tmp_path):
    settings = engine_settings(make_settings, kafka_bootstrap, idle_close_s=20)
    stream = simulated_day(STREAM_SEED, FAULTS)
    truth = stream.ground_truth(settings)
    late_positions = set(_delivered_late(stream.items))
    injected_late = [stream.items[i]["event_id"] for i in sorted(late_positions)]
    assert injected_late and Counter(injected_late) == Counter(
        e.event["event_id"] for e in truth.late)
    # Never applied: without the late lines, replay gives the very same records.
    on_time = [value for i, (_, value) in enumerate(stream.messages) if i not in late_positions]
    assert replay_lines(on_time, settings).records == truth.records

    worker = Worker(settings, tmp_path, kafka_bootstrap)
    feeder = Feeder(kafka_bootstrap, settings.topics.events, stream.messages, rate_per_s=2500)

    def check() -> None:
        worker.check_alive()
        feeder.check()

    worker.start()
    try:
        wait_for_topics(kafka_bootstrap, settings, worker.check_alive)
        feeder.start().join(timeout_s=120)
        wait_for_records(kafka_bootstrap, settings.topics.intervals, len(truth.records), check)
        time.sleep(3)
        figures = Figures("dirty_input", events=len(stream.messages),
                          faults={k: v for k, v in stream.injected.items() if "." not in k})
        figures.extra = {"late_call_events_injected": len(injected_late)}
        final = compare(figures, truth, kafka_bootstrap, settings)
        late = late_dead_letters(kafka_bootstrap, settings)
        dlq = asyncio.run(read_all(kafka_bootstrap, settings.topics.dlq))
    finally:
        feeder.pause()
        code = worker.stop() if worker.running else None
    assert figures.lost == 0 and figures.doubled == 0
    assert final == {record_sort_key(r): r for r in truth.records}
    assert Counter(late.values()) == Counter(injected_late)
    malformed = Counter(dict(r.headers)["callslo.reason"].decode() for r in dlq
                        if dict(r.headers)["callslo.reason"] != b"late")
    assert malformed == Counter({reason: stream.injected[f"malformed.{kind}"]
                                 for kind, reason in MALFORMED_KINDS.items()
                                 if stream.injected[f"malformed.{kind}"]})
    assert code == 0, worker.log_tail()
