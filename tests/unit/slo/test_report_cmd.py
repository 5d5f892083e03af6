"""``callslo report`` end to end on files: a simulated day, replayed, reported; and the
command's errors."""

from __future__ import annotations

import csv
import re
from collections import defaultdict

import orjson
import pytest

from streams import cli
from streams.slo.report.load import COUNT_FIELDS
from streams.slo.report.output import CSV_COLUMNS
from tests.unit.slo.conftest import DAY
from tests.unit.slo.report_dom import check_report_markup
from tests.unit.slo.report_records import interval_record


def read_records(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_simulated_day_replayed_and_reported(simulated_day, tmp_path, capsys):
    records = read_records(simulated_day)
    assert len({(r["tenant"], r["queue"]) for r in records}) >= 3
    # The topic delivers at least once: repeat some records, they must count once.
    source = tmp_path / "with-repeats.jsonl"
    source.write_bytes(simulated_day.read_bytes()
                       + b"".join(orjson.dumps(r) + b"\n" for r in records[:25]))
    out = tmp_path / "report"
    assert cli.main(["report", "--from", DAY, "--to", DAY, "--source", str(source),
                     "--out", str(out)]) == 0
    assert capsys.readouterr().out.split() == [str(out / name) for name in
                                              ("report.html", "intervals.csv", "summary.json")]
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["input"]["read"] == len(records) + 25
    assert summary["input"]["duplicates"] == 25
    assert summary["input"]["duplicates_differing"] == 0
    assert summary["input"]["kept"] == len(records)

    with open(out / "intervals.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(records)
    csv_sums: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    record_sums: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row, record in zip(rows, records):
        for name in COUNT_FIELDS:
            csv_sums[(row["tenant"], row["queue"])][name] += int(row[name])
            record_sums[(record["tenant"], record["queue"])][name] += record[name]
    for (tenant, queue), sums in record_sums.items():
        totals = summary["tenants"][tenant]["queues"][queue]["totals"]
        assert totals == dict(sums) == dict(csv_sums[(tenant, queue)]), (tenant, queue)
        sl = summary["tenants"][tenant]["queues"][queue]["service_level"]
        assert sl["value"] == sums["answered_within"] / sums["offered"]  # formula "offered"

    checked = check_report_markup((out / "report.html").read_text(), records)
    assert checked["queues"] == len(record_sums) and checked["points"] > 100
    html = (out / "report.html").read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_tenant_and_time_zone_options(simulated_day, tmp_path):
    out = tmp_path / "r"
    # The simulated day is 2025-03-03 UTC; in New York its calls fall on the 3rd too (02:00
    # to 15:00 local), and the day before holds nothing.
    assert cli.main(["report", "--from", DAY, "--to", DAY, "--tz", "America/New_York",
                     "--tenant", "globex", "--source", str(simulated_day),
                     "--out", str(out)]) == 0
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert list(summary["tenants"]) == ["globex"]
    assert summary["period"]["tz"] == "America/New_York"
    globex = [r for r in read_records(simulated_day) if r["tenant"] == "globex"]
    assert summary["tenants"]["globex"]["totals"]["offered"] == sum(r["offered"] for r in globex)
    first = summary["tenants"]["globex"]["first_interval_start"]
    assert first.endswith("-05:00")


@pytest.mark.parametrize("options, message", [
    (["--from", "2025-03-04", "--to", "2025-03-03"], "--to 2025-03-03 is before --from 2025-03-04"),
    (["--from", "2025-3-4x", "--to", "2025-03-05"], "--from '2025-3-4x' is not a date"),
    (["--from", "2025-04-01", "--to", "2025-04-30"],
     r"no interval records for 2025-04-01 \.\. 2025-04-30 \(UTC\) in file .*: 2 records read, "
     "2 outside the period"),
    (["--from", "2025-03-03", "--to", "2025-03-03", "--tenant", "initech"],
     "and tenant 'initech' .*2 of other tenants"),
    (["--from", "2025-03-03", "--to", "2025-03-03", "--worst", "-1"], "--worst must be >= 0"),
])
def test_errors_are_clear_and_exit_2(tmp_path, capsys, options, message):
    source = tmp_path / "two.jsonl"
    source.write_bytes(b"".join(orjson.dumps(interval_record(t)) + b"\n"
                                for t in ("2025-03-03T09:00", "2025-03-03T09:15")))
    code = cli.main(["report", *options, "--source", str(source), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("callslo: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "o").exists()


def test_bad_json_line_is_named(tmp_path, capsys):
    source = tmp_path / "broken.jsonl"
    source.write_bytes(orjson.dumps(interval_record("2025-03-03T09:00")) + b"\nnot json\n")
    assert cli.main(["report", "--from", DAY, "--to", DAY, "--source", str(source),
                     "--out", str(tmp_path / "o")]) == 2
    assert "broken.jsonl line 2: not valid JSON" in capsys.readouterr().err


def test_progress_option_reports_on_stderr(tmp_path, capsys, monkeypatch):
    import streams.slo.report.progress as progress_module

    ticks = iter(range(10_000))
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: float(next(ticks)))
    source = tmp_path / "two.jsonl"
    source.write_bytes(b"".join(orjson.dumps(interval_record(t)) + b"\n"
                                for t in ("2025-03-03T09:00", "2025-03-03T09:15")))
    assert cli.main(["report", "--from", DAY, "--to", DAY, "--source", str(source),
                     "--out", str(tmp_path / "o"), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "report: 1 records read" in err and "report: 2 records read" in err
