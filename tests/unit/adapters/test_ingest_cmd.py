"""``callslo ingest asterisk`` without a broker: a stand-in producer records what would be sent."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import orjson
import pytest
from aiokafka.errors import KafkaError

from streams.adapters import ingest_cmd
from streams.adapters.asterisk import QueueLogMapper
from streams.adapters.ingest_cmd import FollowQueueLog, import_file
from streams.adapters.tail import load_state
from streams.errors import CallsloError

FIXTURES = Path(__file__).parent / "fixtures"


class FakeProducer:
    """Acknowledges sends, except those after the first ``ack_limit`` (when set), which fail;
    keeps the acknowledged records only."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes, dict[str, bytes]]] = []
        self.ack_limit: int | None = None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic, value, key=None, headers=None):
        future = asyncio.get_running_loop().create_future()
        if self.ack_limit is not None and len(self.records) >= self.ack_limit:
            future.set_exception(KafkaError("broker unavailable"))
        else:
            self.records.append((topic, key, value, dict(headers or [])))
            future.set_result(None)
        return future


def mapper() -> QueueLogMapper:
    return QueueLogMapper(tenant="acme", source="test", caller_salt=None)


def test_parser_registers_ingest_asterisk():
    parser = argparse.ArgumentParser()
    ingest_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ingest", "asterisk", "--from", "q.log", "--tenant", "acme"])
    assert args.func is ingest_cmd.run and args.from_file == Path("q.log") and args.follow is None
    with pytest.raises(SystemExit):
        parser.parse_args(["ingest", "asterisk", "--from", "a", "--follow", "b"])


def test_bad_tenant_is_refused_before_anything_runs():
    args = argparse.Namespace(tenant="a/b", batch_lines=1, batch_ms=1, poll_ms=1, report_s=1.0)
    with pytest.raises(CallsloError, match="--tenant"):
        ingest_cmd.run(args)


def test_import_sends_events_with_keys_and_bad_lines_as_dead_letters(make_settings):
    settings = make_settings()
    producer = FakeProducer()
    path = FIXTURES / "bad_lines.queue_log"
    counts = asyncio.run(import_file(settings, path, mapper(), batch_lines=4, producer=producer))
    assert counts.lines == 22 and counts.blank == 1
    assert sum(counts.events.values()) == 0 and sum(counts.dead_lettered.values()) == 21
    assert counts.dead_lettered["not_queue_log"] == 4
    dead = [r for r in producer.records if r[0] == settings.topics.dlq]
    assert len(dead) == 21 and all(r[1] is None for r in dead)
    numbers = [int(r[3]["callslo.source.offset"]) for r in dead]
    assert numbers == [n for n in range(1, 23) if n != 19]
    raw = path.read_bytes().split(b"\n")
    for _, _, value, headers in dead:
        assert value == raw[int(headers["callslo.source.offset"]) - 1]
        assert headers["callslo.source.topic"] == f"asterisk:{path}".encode()
        assert headers["callslo.source.partition"] == b"-1"
        assert headers["callslo.reason"] and headers["callslo.detail"]
        assert int(headers["callslo.rejected_at_ms"]) > 0
    assert "dead-lettered" in counts.summary()


def test_import_of_every_event_counts_types_and_skips(make_settings):
    settings = make_settings()
    producer = FakeProducer()
    counts = asyncio.run(import_file(settings, FIXTURES / "every_event.queue_log", mapper(),
                                     producer=producer))
    assert counts.lines == 38
    assert counts.skipped == {"QUEUESTART": 1, "DID": 1, "RINGNOANSWER": 1, "CONFIGRELOAD": 1}
    assert counts.events == {"agent.state": 11, "call.queued": 9, "call.answered": 5,
                             "call.ended": 2, "call.abandoned": 1, "call.dequeued": 3,
                             "call.transferred": 3}
    assert not counts.dead_lettered
    for topic, key, value, _ in producer.records:
        event = orjson.loads(value)
        assert topic == settings.topics.events
        expected = (f"acme/agent/{event['agent_id']}" if event["type"] == "agent.state"
                    else f"acme/{event['queue']}")
        assert key == expected.encode()


async def _follow_until(follow: FollowQueueLog, done) -> None:
    task = asyncio.create_task(follow.run())
    try:
        for _ in range(200):
            if done() or task.done():
                break
            await asyncio.sleep(0.01)
    finally:
        follow.stop()
        await task


def test_follow_saves_its_position_only_after_the_batch_is_acknowledged(make_settings, tmp_path):
    settings = make_settings()
    log = tmp_path / "queue_log"
    state = tmp_path / "state.json"
    lines = [b"17410797%02d|1.%d|q|NONE|ABANDON|1|1|%d\n" % (i, i, i) for i in range(1, 8)]
    log.write_bytes(b"".join(lines))
    producer = FakeProducer()

    def follow() -> FollowQueueLog:
        return FollowQueueLog(settings, log, state_path=state, tenant="acme", source="test",
                              caller_salt=None, batch_lines=3, batch_ms=10, poll_ms=5,
                              producer=producer)

    producer.ack_limit = 3  # the first batch is acknowledged, the second never is
    with pytest.raises(CallsloError, match="not acknowledged"):
        asyncio.run(follow().run())
    position, extra = load_state(state)
    assert position.line_number == 3 and extra["file"] == str(log)
    assert len(producer.records) == 3

    producer.ack_limit = None
    second = follow()
    asyncio.run(_follow_until(second, lambda: len(producer.records) >= 7))
    waits = [orjson.loads(r[2])["wait_ms"] for r in producer.records]
    assert waits == [i * 1000 for i in range(1, 8)]  # every line once, in order
    assert load_state(state)[0].line_number == 7


def test_follow_refuses_a_state_file_of_another_file(make_settings, tmp_path):
    settings = make_settings()
    state = tmp_path / "state.json"
    (tmp_path / "a").write_bytes(b"")
    (tmp_path / "b").write_bytes(b"")
    producer = FakeProducer()
    kwargs = dict(state_path=state, tenant="acme", source="t", caller_salt=None, poll_ms=5,
                  producer=producer)
    asyncio.run(_follow_until(FollowQueueLog(settings, tmp_path / "a", **kwargs), lambda: True))
    assert load_state(state) is not None
    with pytest.raises(CallsloError, match="belongs to"):
        asyncio.run(FollowQueueLog(settings, tmp_path / "b", **kwargs).run())
