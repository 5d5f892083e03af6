"""``callslo staffing``: argument handling, text and JSON output, exit codes."""

from __future__ import annotations

import argparse
import json

import pytest

from kernels import required_agents
from streams.slo import staffing_cmd

BASE = "staffing --arrivals 400 --interval-s 3600 --aht-s 180 --threshold-s 20 --target 0.8".split()


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="callslo")
    staffing_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_json_has_exactly_the_documented_keys(capsys):
    assert run(BASE + ["--max-occupancy", "0.85", "--shrinkage", "0.3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert tuple(out) == staffing_cmd.JSON_KEYS
    expected = required_agents(400, 3600, 180, 20, 0.8, max_occupancy=0.85, shrinkage=0.3)
    assert out["agents"] == int(expected.agents) == 35
    assert out["raw_agents"] == 24
    assert out["service_level"] == pytest.approx(float(expected.service_level))
    assert out["p_abandon"] is None


def test_json_with_patience_reports_abandonment(capsys):
    assert run(BASE + ["--patience-s", "120", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["p_abandon"] < 1
    assert out["raw_agents"] < 24  # impatient callers need fewer agents than Erlang C


def test_text_output_names_every_metric(capsys):
    assert run(BASE + ["--patience-s", "120"]) == 0
    text = capsys.readouterr().out
    labels = ("Erlang A", "agents to schedule", "service level", "ASA", "probability of wait", "occupancy")
    labels += ("abandonment",)
    for label in labels:
        assert label in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "80"], "--target must be a fraction"),
        (["--shrinkage", "1"], "--shrinkage"),
        (["--max-occupancy", "0"], "--max-occupancy"),
        (["--patience-s", "-3"], "--patience-s"),
        (["--aht-s", "0"], "--aht-s"),
        (["--arrivals", "nan"], "--arrivals"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(capsys, extra, message):
    assert run(BASE + extra) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_non_numeric_option_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        run(BASE + ["--aht-s", "three"])
    assert exc.value.code == 2
