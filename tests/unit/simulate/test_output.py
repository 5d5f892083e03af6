"""Pacing against a fake clock, the file writer, and the ``simulate`` command's options."""

from __future__ import annotations

import argparse
import asyncio
import io

import orjson
import pytest

from streams.contract import Decoder
from streams.errors import CallsloError, ConfigError
from streams.simulate import cmd
from streams.simulate.faults import RawLine
from streams.settings import KafkaSettings
from streams.simulate.output import Pacer, produce_kafka, write_file

START_MS = 1_740_960_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_s += seconds


def event(offset_ms: int, n: int = 0) -> dict:
    return {"event_id": f"t-{n}", "type": "agent.state", "ts_ms": START_MS + offset_ms,
            "tenant": "t", "agent_id": "a-1", "state": "available"}


def test_unpaced_pacer_never_waits():
    clock = FakeClock()
    pacer = Pacer(None, START_MS, clock)
    assert pacer.delay_s(START_MS + 10**9) == 0.0
    out = io.BytesIO()
    assert write_file([[event(0), event(3_600_000)]], out, pacer, clock.sleep) == 2
    assert clock.slept == []


def test_speedup_maps_event_time_to_wall_time():
    clock = FakeClock()
    pacer = Pacer(60.0, START_MS, clock)  # one event-minute per wall second
    assert pacer.delay_s(START_MS + 120_000) == pytest.approx(2.0)
    clock.now_s += 0.5
    assert pacer.delay_s(START_MS + 120_000) == pytest.approx(1.5)
    assert pacer.reached_ms() == pytest.approx(START_MS + 30_000)
    assert pacer.delay_s(START_MS + 1_000) == 0.0  # already due


def test_file_writer_sleeps_until_each_event_is_due():
    clock = FakeClock()
    pacer = Pacer(10.0, START_MS, clock)
    events = [event(0, 1), event(500, 2), event(10_000, 3), event(10_000, 4), event(25_000, 5)]
    line = RawLine("t/agent/a-1", b"{not json", START_MS + 30_000, "truncated")
    out = io.BytesIO()
    written = write_file([events[:3], events[3:] + [line]], out, pacer, clock.sleep)
    assert written == 6
    # Due at +0 s, +0.05 s, +1 s, +1 s, +2.5 s, +3 s of wall time.
    assert clock.slept == pytest.approx([0.05, 0.95, 1.5, 0.5])
    assert out.getvalue().splitlines() == [orjson.dumps(e) for e in events] + [b"{not json"]


def test_realtime_is_speedup_one():
    clock = FakeClock()
    pacer = Pacer(1.0, START_MS, clock)
    assert pacer.delay_s(START_MS + 2_500) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        Pacer(0.0, START_MS, clock)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["simulate", *argv])


def test_command_writes_the_same_file_for_the_same_seed(tmp_path, capsys):
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for path in paths:
        args = parse("--arrivals-per-hour", "300", "--aht-s", "120", "--agents", "12",
                     "--patience-s", "90", "--hours", "2", "--seed", "4",
                     "--start", "2025-03-03T00:00:00Z", "--out", str(path))
        assert args.func(args) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    lines = paths[0].read_bytes().splitlines()
    assert orjson.loads(lines[0])["ts_ms"] == START_MS
    assert "calls" in capsys.readouterr().err


def test_command_adds_faults(tmp_path):
    path = tmp_path / "f.jsonl"
    args = parse("--arrivals-per-hour", "300", "--aht-s", "120", "--agents", "12", "--hours", "2",
                 "--start", str(START_MS), "--out", str(path), "--malformed", "0.05",
                 "--duplicates", "0.05")
    assert args.func(args) == 0
    decoder = Decoder(max_message_bytes=1 << 20, max_future_skew_ms=300_000,
                      max_age_ms=3660 * 86_400_000, check_key=False)
    now_ms = START_MS + 86_400_000
    lines = path.read_bytes().splitlines()
    rejected = [line for line in lines if type(decoder.decode(line, None, now_ms)) is not dict]
    ids = [orjson.loads(line)["event_id"] for line in lines if line not in rejected]
    assert rejected and len(set(ids)) < len(ids)


def test_default_start_keeps_the_run_in_the_past():
    now_ms = START_MS + 5 * 3_600_000 + 123
    args = parse("--hours", "30", "--out", "x")
    start = cmd._start_ms(args, 30 * 3_600_000, now_ms)
    assert start % 86_400_000 == 0 and start + 30 * 3_600_000 <= now_ms
    assert cmd._start_ms(parse("--realtime", "--out", "x"), 1, now_ms) == now_ms - 123


@pytest.mark.parametrize("argv, message", [
    (("--arrivals-per-hour", "100", "--out", "x"), "also needs --aht-s, --agents"),
    (("--patience-s", "60", "--out", "x"), "stationary mode"),
    (("--arrivals-per-hour", "100", "--aht-s", "0", "--agents", "3", "--out", "x"), "--aht-s"),
    (("--arrivals-per-hour", "100", "--aht-s", "60", "--agents", "3", "--scenario", "s.toml",
      "--out", "x"), "not both"),
    (("--hours", "-1", "--out", "x"), "more than 0"),
    (("--start", "yesterday", "--out", "x"), "--start"),
    (("--speedup", "0", "--out", "x"), "--speedup"),
    (("--duplicates", "2", "--out", "x"), "--duplicates"),
    (("--scenario", "/nonexistent/s.toml", "--out", "x"), "cannot read scenario"),
])
def test_bad_options_raise_config_errors(argv, message):
    args = parse(*argv)
    with pytest.raises(ConfigError, match=message):
        args.func(args)


def test_output_is_required_and_exclusive():
    with pytest.raises(SystemExit) as exc:
        parse("--seed", "1")
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        parse("--out", "x", "--topic", "t")


def test_parse_start_forms():
    assert cmd.parse_start_ms("2025-03-03") == START_MS
    assert cmd.parse_start_ms("2025-03-03T01:00:00+01:00") == START_MS
    assert cmd.parse_start_ms(str(START_MS)) == START_MS


def test_an_unreachable_broker_is_a_clear_error_naming_it():
    kafka = KafkaSettings(bootstrap="127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(CallsloError, match="127.0.0.1:9"):
        asyncio.run(produce_kafka([], kafka, "t", Pacer(None, START_MS)))
