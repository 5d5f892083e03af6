"""``callslo ingest asterisk`` on the real broker: a one-off import lands exactly the mapped
events (with their keys) and the bad lines (with their line numbers); a follower that sees a
rotation and a restart puts every line on the topic once, in order."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import orjson
import pytest

from streams.adapters import ingest_cmd
from streams.adapters.asterisk import QueueLogMapper
from streams.adapters.ingest_cmd import FollowQueueLog
from streams.adapters.tail import load_state
from streams.contract import event_key
from streams.topics import ensure_topics
from tests.integration.kafka_helpers import read_all, wait_for
from tests.unit.adapters.test_asterisk import BAD_LINES

pytestmark = pytest.mark.timeout(180)

FIXTURES = Path(__file__).parent.parent / "unit" / "adapters" / "fixtures"
SALT = "integration-salt"


def _config(tmp_path: Path, settings) -> Path:
    """A settings file naming the test's broker and topics, for the command-line entry point."""
    path = tmp_path / "callslo.toml"
    path.write_text(
        f'[kafka]\nbootstrap = "{settings.kafka.bootstrap}"\n'
        f'[topics]\nevents = "{settings.topics.events}"\ndlq = "{settings.topics.dlq}"\n'
        f'batches = "{settings.topics.batches}"\npartitions = {settings.topics.partitions}\n')
    return path


def _ingest_from(config: Path, path: Path) -> int:
    args = argparse.Namespace(from_file=path, follow=None, tenant="acme", source_name="it",
                              state=None, start_at_end=False, batch_lines=7, batch_ms=200,
                              poll_ms=250, report_s=60.0, config=config)
    return ingest_cmd.run(args)


def test_from_puts_mapped_events_and_bad_lines_on_their_topics(
        kafka_bootstrap, make_settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ingest_cmd.CALLER_SALT_ENV, SALT)
    monkeypatch.delenv("CALLSLO_BOOTSTRAP", raising=False)
    settings = make_settings(kafka_bootstrap)
    asyncio.run(ensure_topics(settings))
    config = _config(tmp_path, settings)
    good, bad = FIXTURES / "every_event.queue_log", FIXTURES / "bad_lines.queue_log"

    assert _ingest_from(config, good) == 0
    assert _ingest_from(config, bad) == 0
    out = capsys.readouterr().out
    assert "38 lines (0 blank): 34 events" in out and "22 lines (1 blank): 0 events" in out

    mapper = QueueLogMapper(tenant="acme", source="it", caller_salt=SALT.encode())
    expected = [e for e in map(mapper.map_line, good.read_bytes().splitlines())
                if isinstance(e, dict)]
    records = asyncio.run(read_all(kafka_bootstrap, settings.topics.events))
    assert len(records) == len(expected) == 34
    got = {orjson.loads(r.value)["event_id"]: (r.key, orjson.loads(r.value)) for r in records}
    for event in expected:
        key, value = got[event["event_id"]]
        assert key == event_key(event).encode()
        assert value == event
    # Per key, the topic keeps the file's order.
    for key in {r.key for r in records}:
        on_topic = [orjson.loads(r.value)["event_id"]
                    for r in sorted(records, key=lambda r: r.offset) if r.key == key]
        in_file = [e["event_id"] for e in expected if event_key(e).encode() == key]
        assert on_topic == in_file

    dead = asyncio.run(read_all(kafka_bootstrap, settings.topics.dlq))
    raw = bad.read_bytes().split(b"\n")
    assert len(dead) == len(BAD_LINES) == 21
    seen = {}
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        number = int(headers["callslo.source.offset"])
        assert headers["callslo.source.topic"] == f"asterisk:{bad}"
        assert headers["callslo.source.partition"] == "-1"
        assert record.key is None and record.value == raw[number - 1]
        seen[number] = (headers["callslo.reason"], headers.get("callslo.field"))
    assert seen == BAD_LINES


def _line(i: int) -> bytes:
    return b"%d|%d.%d|q|NONE|ABANDON|1|1|%d\n" % (1741079700 + i, 1741079700, i, i)


async def _follow_scenario(settings, log: Path, state: Path) -> None:
    def follower() -> FollowQueueLog:
        return FollowQueueLog(settings, log, state_path=state, tenant="acme", source="it",
                              caller_salt=None, batch_lines=4, batch_ms=50, poll_ms=20,
                              rotate_grace_ms=200)

    def saved(path: Path, line_number: int):
        def check() -> bool:
            loaded = load_state(state)
            return (loaded is not None and loaded[0].path == str(path)
                    and loaded[0].line_number == line_number)
        return check

    rotated = log.with_name("queue_log.1")
    log.write_bytes(b"".join(_line(i) for i in range(1, 6)))
    first = follower()
    task = asyncio.create_task(first.run())
    try:
        await wait_for(saved(log, 5), 30, "lines 1-5 acknowledged")
        os.rename(log, rotated)
        with open(rotated, "ab") as fh:  # Asterisk writes on until it reopens the path
            fh.write(_line(6) + _line(7))
        log.write_bytes(_line(8) + _line(9) + _line(10))
        await wait_for(saved(log, 3), 30, "the rotated file finished and the new one read")
    finally:
        first.stop()
        await task
    with open(log, "ab") as fh:  # written while the adapter is down, the last one partial
        fh.write(_line(11) + _line(12) + _line(13)[:12])
    second = follower()
    task = asyncio.create_task(second.run())
    try:
        await wait_for(saved(log, 5), 30, "lines written while stopped")
        with open(log, "ab") as fh:
            fh.write(_line(13)[12:] + _line(14))
        await wait_for(saved(log, 7), 30, "the completed partial line and one more")
    finally:
        second.stop()
        await task


def test_follow_across_rotation_and_restart_has_no_gap_and_no_duplicate(
        kafka_bootstrap, make_settings, tmp_path):
    settings = make_settings(kafka_bootstrap)
    asyncio.run(ensure_topics(settings))
    log = tmp_path / "queue_log"
    asyncio.run(_follow_scenario(settings, log, tmp_path / "state" / "queue_log.json"))
    records = asyncio.run(read_all(kafka_bootstrap, settings.topics.events))
    values = [orjson.loads(r.value) for r in sorted(records, key=lambda r: r.offset)]
    assert {r.key for r in records} == {b"acme/q"}
    assert [v["wait_ms"] for v in values] == [i * 1000 for i in range(1, 15)]
    assert len({v["event_id"] for v in values}) == 14
    assert asyncio.run(read_all(kafka_bootstrap, settings.topics.dlq)) == []
