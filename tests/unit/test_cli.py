"""The command line: parsing, and the offline `validate` command."""

from __future__ import annotations

import orjson
import pytest

from streams import cli
from streams.contract import event_key
from tests.unit.test_contract import make_event


def test_every_subcommand_has_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("kafka", "topics", "worker", "validate"):
        assert name in out


def test_kafka_port_option():
    args = cli.build_parser().parse_args(["kafka", "start", "--port", "19092"])
    assert (args.action, args.port, args.func) == ("start", 19092, cli._cmd_kafka)


def test_validate_reports_each_bad_line(tmp_path, capsys):
    import time

    now = int(time.time() * 1000)
    lines = [orjson.dumps(make_event("call.queued", ts_ms=now)), b"",
             b"{oops", orjson.dumps(make_event("call.ended", ts_ms=now, talk_ms=-1))]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert cli.main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "line 3: not_json" in out
    assert "line 4: negative_duration" in out
    assert "3 events, 1 valid, 2 rejected" in out


def test_validate_passes_a_clean_file(tmp_path, capsys):
    import time

    event = make_event("agent.state", ts_ms=int(time.time() * 1000))
    path = tmp_path / "ok.jsonl"
    path.write_bytes(orjson.dumps(event) + b"\n")
    assert cli.main(["validate", str(path)]) == 0
    assert "1 events, 1 valid, 0 rejected" in capsys.readouterr().out
    assert event_key(event) == "acme/agent/a7"


def test_config_errors_exit_2_with_a_message(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[web]\nport = 'x'\n")
    assert cli.main(["topics", "list", "--config", str(bad)]) == 2
    assert "web.port must be int" in capsys.readouterr().err


def test_records_table_line_shows_the_service_level_verdict():
    from streams.peek import format_record

    record = {"tenant": "acme", "queue": "sales", "interval_start_ms": 1_790_000_100_000,
              "offered": 50, "service_level": 0.42, "sl_target": 0.8, "asa_s": 31.1,
              "abandon_rate": 0.14, "wait_p90_s": 81.9, "aht_s": 232.5, "sl_met": False}
    line = format_record(record)
    assert line.startswith("acme/sales") and "42.0" in line and line.endswith("MISS")
    empty = format_record({**record, "offered": 0, "service_level": None, "sl_met": None,
                           "asa_s": None, "abandon_rate": None, "wait_p90_s": None,
                           "aht_s": None})
    assert "MISS" not in empty and " - " in empty


def test_kafka_start_security_options(tmp_path):
    password = tmp_path / "pw"
    password.write_text("local-broker-pw\n")
    args = cli.build_parser().parse_args(
        ["kafka", "start", "--scram-user", "callslo", "--scram-password-file", str(password),
         "--tls"])
    security = cli._broker_security(args)
    assert (security.protocol, dict(security.scram_users)) == (
        "SASL_SSL", {"callslo": "local-broker-pw"})
    assert "local-broker-pw" not in repr(security)
    plain = cli._broker_security(cli.build_parser().parse_args(["kafka", "start"]))
    assert plain.protocol == "PLAINTEXT"


def test_kafka_start_scram_user_needs_its_password_file(capsys):
    assert cli.main(["kafka", "start", "--scram-user", "callslo"]) == 2
    assert "--scram-user and --scram-password-file go together" in capsys.readouterr().err
