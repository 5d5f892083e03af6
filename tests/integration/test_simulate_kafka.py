"""``callslo simulate --topic`` on the real broker: the topic holds exactly the lines the
file output gives for the same seed, keyed by the contract key, in order per key."""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict

import orjson
from aiokafka.partitioner import murmur2

from streams.contract import event_key
from streams.simulate import cmd
from streams.topics import ensure_topics
from tests.integration.kafka_helpers import read_all

COMMON = ("--arrivals-per-hour", "600", "--aht-s", "120", "--agents", "22", "--patience-s", "60",
          "--hours", "1", "--seed", "21", "--start", "2025-03-03T08:00:00Z", "--malformed", "0.01")


def run_simulate(*argv: str) -> None:
    parser = argparse.ArgumentParser()
    cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["simulate", *argv])
    assert args.func(args) == 0


def test_topic_output_matches_file_output(kafka_bootstrap, make_settings, tmp_path):
    settings = make_settings(kafka_bootstrap)
    topic = settings.topics.events
    asyncio.run(ensure_topics(settings))
    path = tmp_path / "events.jsonl"
    run_simulate(*COMMON, "--out", str(path))
    run_simulate(*COMMON, "--topic", topic, "--bootstrap", kafka_bootstrap)

    lines = path.read_bytes().splitlines()
    assert 2_000 < len(lines) < 20_000
    records = asyncio.run(read_all(kafka_bootstrap, topic))
    assert sorted(r.value for r in records) == sorted(lines)

    expected_by_key = defaultdict(list)
    for line in lines:
        try:
            event = orjson.loads(line)
            key = event_key(event)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            key = None  # a malformed line: its key is checked through the file order below
        if key is not None:
            expected_by_key[key].append(line)
    got_by_key = defaultdict(list)
    partitions = settings.topics.partitions
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.key is not None
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % partitions
        got_by_key[record.key.decode()].append(record.value)
    for key, expected in expected_by_key.items():
        # Malformed lines carry their source event's key, so remove them before comparing.
        assert [v for v in got_by_key[key] if v in set(expected)] == expected, key
