"""Stage 1 on the real broker when the group rebalances between a poll and its commit: the
stage keeps running (a worker joining or leaving must not stop the others), and the new owner
of a moved partition reads the uncommitted poll again, so nothing is lost."""

from __future__ import annotations

import asyncio

from streams.ingest import IngestStage
from streams.topics import ensure_topics
from tests.integration.kafka_helpers import event_message, now_ms, produce, wait_for


async def _scenario(bootstrap: str, settings) -> None:
    await ensure_topics(settings)
    ts = now_ms()
    events = [{"event_id": f"e{i}", "type": "call.queued", "ts_ms": ts, "tenant": "acme",
               "queue": f"q{i % 7}", "call_id": f"c{i}"} for i in range(300)]
    await produce(bootstrap, settings.topics.events, [event_message(e) for e in events])
    first = IngestStage(settings)
    await first.start()
    second = IngestStage(settings)
    try:
        polled = {}
        while not polled:
            polled = await first._consumer.getmany(timeout_ms=1000)
        # A second member joins before the first commits: the group rebalances under it.
        await second.start()
        fetched: dict = {}

        async def fetch() -> bool:
            for tp, records in (await second._consumer.getmany(timeout_ms=200)).items():
                fetched.setdefault(tp, records[0].offset)
            return bool(fetched)

        await wait_for(fetch, 60, "the second member's first records")
        moved = {tp for tp in polled if tp not in first._consumer.assignment()}
        assert moved
        await first.process(polled.items())  # used to raise IllegalStateError: worker down
        assert first.counts["commits_lost_to_rebalance"] == 1
        # The new owner starts where the last commit left off: the whole poll, again.
        async def fetched_every_moved_partition() -> bool:
            await fetch()
            return moved <= fetched.keys()

        await wait_for(fetched_every_moved_partition, 30, "records of every moved partition")
        assert {tp: fetched[tp] for tp in moved} == {tp: 0 for tp in moved}
    finally:
        await first.close()
        await second.close()


def test_a_rebalance_between_poll_and_commit_does_not_stop_stage1(kafka_bootstrap,
                                                                   make_settings):
    settings = make_settings(kafka_bootstrap, worker={"broker_session_timeout_s": 6,
                                                      "broker_heartbeat_interval_s": 2})
    asyncio.run(_scenario(kafka_bootstrap, settings))
