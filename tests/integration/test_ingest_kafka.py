"""Stage 1 on the real broker: bad events land on the DLQ with their reasons, good ones in
column batches on the same partition number, and committed offsets are not read twice."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from streams.columns import ColumnBatch
from streams.ingest import IngestStage
from streams.topics import ensure_topics
from tests.integration.kafka_helpers import event_message, now_ms, produce, read_all, wait_for

pytestmark = pytest.mark.timeout(180)


def _events(ts: int):
    """Valid events over several queues and tenants, and invalid ones with expected reasons."""
    valid, invalid = [], []
    for i in range(60):
        queue = f"q{i % 7}"
        tenant = "acme" if i % 2 else "globex"
        valid.append({"event_id": f"ok-{i}", "type": "call.queued", "ts_ms": ts, "tenant": tenant,
                      "queue": queue, "call_id": f"c{i}"})
        valid.append({"event_id": f"ok-a{i}", "type": "call.answered", "ts_ms": ts + 1,
                      "tenant": tenant, "queue": queue, "call_id": f"c{i}", "agent_id": "a1",
                      "wait_ms": 1000 + i})
    valid.append({"event_id": "ok-agent", "type": "agent.state", "ts_ms": ts, "tenant": "acme",
                  "agent_id": "a1", "state": "available", "queues": ["q1", "q2"]})
    base = {"event_id": "x", "type": "call.abandoned", "ts_ms": ts, "tenant": "acme",
            "queue": "q1", "call_id": "c"}
    key = b"acme/q1"
    invalid = [
        (key, b"{not json", "not_json"),
        (key, b'{"wait_ms": NaN}', "not_json"),
        (key, b"\xff\xfe\xfd", "not_json"),
        (key, b"[1,2,3]", "not_object"),
        (key, orjson.dumps({**base, "type": "call.exploded"}), "unknown_type"),
        (key, orjson.dumps({**base, "wait_ms": -5}), "negative_duration"),
        (key, orjson.dumps({**base, "wait_ms": 2.5}), "wrong_type"),
        (key, orjson.dumps({**base, "ts_ms": ts + 3_600_000}), "ts_in_future"),
        (key, orjson.dumps({k: v for k, v in base.items() if k != "call_id"}), "missing_field"),
        (b"acme/q2", orjson.dumps(base), "key_mismatch"),
        (key, orjson.dumps({**base, "v": 9}), "unsupported_version"),
        (key, orjson.dumps({**base, "pad": "x" * 2_000_000}), "too_large"),
    ]
    return valid, invalid


async def _run_until(stage: IngestStage, consumed: int, timeout_s: float = 60) -> None:
    task = asyncio.create_task(stage.run())
    try:
        await wait_for(lambda: stage.counts["consumed"] >= consumed or task.done(), timeout_s,
                       f"{consumed} events through stage 1")
        if task.done():
            task.result()
    finally:
        await stage.stop()
        await task
        await stage.close()


async def _scenario(bootstrap: str, settings) -> None:
    await ensure_topics(settings)
    valid, invalid = _events(now_ms())
    messages = [event_message(e) for e in valid]
    # interleave the bad ones so each lands between good ones of the same partition
    for i, (key, value, _) in enumerate(invalid):
        messages.insert(3 + i * 9, (key, value))
    positions = await produce(bootstrap, settings.topics.events, messages)
    expected_dead = {positions[messages.index((k, v))]: reason for k, v, reason in invalid}

    stage = IngestStage(settings)
    await stage.start()
    await _run_until(stage, len(messages))
    assert stage.counts["consumed"] == len(messages)
    assert stage.counts["dead_lettered"] == len(invalid)
    assert stage.counts["valid"] == len(valid)

    dlq = await read_all(bootstrap, settings.topics.dlq)
    got_dead = {}
    for record in dlq:
        headers = {k: v.decode() for k, v in record.headers}
        source = (int(headers["callslo.source.partition"]), int(headers["callslo.source.offset"]))
        assert headers["callslo.source.topic"] == settings.topics.events
        assert record.partition == source[0]
        got_dead[source] = headers["callslo.reason"]
        # the original bytes, untouched
        assert record.value == messages[positions.index(source)][1]
        assert record.key == messages[positions.index(source)][0]
    assert got_dead == expected_dead

    batches = [(r.partition, ColumnBatch.from_bytes(r.value))
               for r in await read_all(bootstrap, settings.topics.batches)]
    seen = {}
    for partition, batch in batches:
        assert batch.source_partition == partition
        assert batch.source_topic == settings.topics.events
        for offset, event in zip(batch.arrays["offset"].tolist(), batch.events()):
            assert (partition, offset) not in seen
            seen[(partition, offset)] = event["event_id"]
    expected_valid = {positions[messages.index(event_message(e))]: e["event_id"] for e in valid}
    assert seen == expected_valid

    # A restarted stage in the same group finds everything committed: nothing is read twice.
    again = IngestStage(settings)
    await again.start()
    extra = [event_message({**valid[0], "event_id": "after-restart"})]
    await produce(bootstrap, settings.topics.events, extra)
    await _run_until(again, 1)
    assert again.counts["consumed"] == 1 and again.counts["valid"] == 1


def test_stage1_dead_letters_exactly_the_invalid_events(kafka_bootstrap, make_settings):
    settings = make_settings(kafka_bootstrap, ingest={"batch_max_events": 50})
    asyncio.run(_scenario(kafka_bootstrap, settings))
