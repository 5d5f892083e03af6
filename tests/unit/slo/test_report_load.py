"""Reading interval records for the report: period and time zone, checks with clear errors,
repeats dropped, tenant filter, progress."""

from __future__ import annotations

import io

import orjson
import pytest

from streams.errors import CallsloError
from streams.slo.report.load import Collector, Period, check_record, read_file
from streams.slo.report.progress import Progress
from tests.unit.slo.report_records import at_ms, interval_record


def collect(records, first="2025-03-03", last="2025-03-03", tz="UTC", tenant=None):
    collector = Collector(Period.from_options(first, last, tz), tenant,
                          Progress("test", enabled=False))
    for number, record in enumerate(records, start=1):
        collector.add(record, f"record {number}")
    return collector.result()


def write_lines(path, records):
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return str(path)


def test_period_is_whole_local_days():
    period = Period.from_options("2025-03-03", "2025-03-04", "Europe/Berlin")
    assert period.start_ms == at_ms("2025-03-02T23:00")
    assert period.end_ms == at_ms("2025-03-04T23:00")
    # The spring-forward day in Berlin has 23 hours.
    dst = Period.from_options("2025-03-30", "2025-03-30", "Europe/Berlin")
    assert dst.end_ms - dst.start_ms == 23 * 3_600_000


def test_records_are_kept_by_their_start_in_the_report_time_zone():
    inside_first = interval_record("2025-03-02T23:00")   # 00:00 Berlin on the 3rd
    before = interval_record("2025-03-02T22:45")         # 23:45 Berlin on the 2nd
    inside_last = interval_record("2025-03-03T22:45")    # 23:45 Berlin on the 3rd
    after = interval_record("2025-03-03T23:00")          # 00:00 Berlin on the 4th
    loaded = collect([before, inside_first, inside_last, after], tz="Europe/Berlin")
    assert loaded.records == [inside_first, inside_last]
    assert loaded.counts["outside_period"] == 2
    utc = collect([before, inside_first, inside_last, after], tz="UTC")
    assert utc.records == [inside_last, after]


def test_repeated_records_count_once_and_the_last_one_wins():
    first = interval_record("2025-03-03T09:00", answered=10)
    again = dict(first)
    changed = interval_record("2025-03-03T09:00", answered=12)
    other = interval_record("2025-03-03T09:15")
    loaded = collect([first, other, again])
    assert loaded.records == [first, other]
    assert (loaded.counts["read"], loaded.counts["duplicates"],
            loaded.counts["duplicates_differing"], loaded.counts["kept"]) == (3, 1, 0, 2)
    loaded = collect([first, other, changed])
    assert loaded.records == [changed, other]
    assert loaded.counts["duplicates_differing"] == 1


def test_same_interval_of_another_queue_is_not_a_repeat():
    records = [interval_record("2025-03-03T09:00", queue=q) for q in ("support", "sales")]
    records.append(interval_record("2025-03-03T09:00", tenant="globex"))
    loaded = collect(records)
    assert loaded.counts["duplicates"] == 0 and len(loaded.records) == 3
    only = collect(records, tenant="globex")
    assert [r["tenant"] for r in only.records] == ["globex"]
    assert only.counts["other_tenants"] == 2


@pytest.mark.parametrize("first, last, tz, message", [
    ("2025-02-30", "2025-03-01", "UTC", "--from '2025-02-30' is not a date"),
    ("2025-03-01", "March 3", "UTC", "--to 'March 3' is not a date"),
    ("2025-03-05", "2025-03-04", "UTC", "--to 2025-03-04 is before --from 2025-03-05"),
    ("2025-03-01", "2025-03-04", "Mars/Olympus", "not a known time zone"),
])
def test_bad_period_options(first, last, tz, message):
    with pytest.raises(CallsloError, match=message):
        Period.from_options(first, last, tz)


@pytest.mark.parametrize("change, message", [
    ({"offered": "7"}, "field 'offered' is '7', expected an integer >= 0"),
    ({"answered": -1}, "field 'answered' is -1"),
    ({"handled": True}, "field 'handled' is True"),
    ({"sl_target": None}, "field 'sl_target' is None, expected a number"),
    ({"asa_s": "fast"}, "field 'asa_s' is 'fast', expected a number or null"),
    ({"sl_met": 1}, "field 'sl_met' is 1"),
    ({"sl_formula": "median"}, "unknown sl_formula 'median'"),
    ({"interval_end_ms": 0}, "interval_end_ms is not after interval_start_ms"),
])
def test_record_checks_name_the_field(change, message):
    record = {**interval_record("2025-03-03T09:00"), **change}
    with pytest.raises(CallsloError, match=f"record 7: {message}"):
        check_record(record, "record 7")


def test_missing_field_and_non_object():
    record = interval_record("2025-03-03T09:00")
    del record["answered_within"]
    with pytest.raises(CallsloError, match="'answered_within' is missing"):
        check_record(record, "x")
    with pytest.raises(CallsloError, match="x: not a JSON object"):
        check_record([1, 2], "x")


def test_file_errors_give_the_line_number(tmp_path):
    good = interval_record("2025-03-03T09:00")
    path = tmp_path / "records.jsonl"
    path.write_bytes(orjson.dumps(good) + b"\n\n" + b'{"tenant": "acme", \n')
    collector = Collector(Period.from_options("2025-03-03", "2025-03-03"), None,
                          Progress("test", enabled=False))
    with pytest.raises(CallsloError, match=r"records.jsonl line 3: not valid JSON"):
        read_file(str(path), collector)
    bad = dict(good, queue=None)
    write_lines(path, [good, good, bad])
    with pytest.raises(CallsloError, match=r"records.jsonl line 3: field 'queue'"):
        read_file(str(path), collector)


def test_unreadable_file(tmp_path):
    collector = Collector(Period.from_options("2025-03-03", "2025-03-03"), None,
                          Progress("test", enabled=False))
    with pytest.raises(CallsloError, match="cannot read .*missing.jsonl: No such file"):
        read_file(str(tmp_path / "missing.jsonl"), collector)
    with pytest.raises(CallsloError, match="cannot read .*: Is a directory"):
        read_file(str(tmp_path), collector)


def test_file_reads_every_record(tmp_path):
    records = [interval_record(at_ms("2025-03-03T00:00") + i * 900_000) for i in range(96)]
    path = write_lines(tmp_path / "day.jsonl", records + records[:5])
    collector = Collector(Period.from_options("2025-03-03", "2025-03-03"), None,
                          Progress("test", enabled=False))
    read_file(path, collector)
    loaded = collector.result()
    assert loaded.records == records
    assert (loaded.counts["read"], loaded.counts["duplicates"]) == (101, 5)


class FakeClock:
    def __init__(self):
        self.now_s = 0.0

    def __call__(self):
        return self.now_s


def test_progress_at_most_once_a_second():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress("report", enabled=True, out=out, clock=clock)
    for _ in range(640):  # 256 records a second (exact in binary) for 2.5 s
        clock.now_s += 1 / 256
        progress.tick()
    progress.done()
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["report: 256 records read (256/s)", "report: 512 records read (256/s)"]
    assert lines[-1] == "report: 640 records read (256/s)"
    assert len(lines) == 3


def test_progress_disabled_or_quick_prints_nothing():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress("report", enabled=False, out=out, clock=clock)
    clock.now_s = 10
    progress.tick(5)
    progress.done()
    quick = Progress("report", enabled=True, out=out, clock=clock)
    quick.tick(5)
    quick.done()
    assert out.getvalue() == "" and progress.count == 5


def _fcr(start: str, first: int, repeat: int, **fields) -> dict:
    start_ms = at_ms(start)
    return {"schema": "slo.queue-fcr.v1", "tenant": "acme", "queue": "support",
            "interval_start_ms": start_ms, "interval_end_ms": start_ms + 900_000,
            "fcr_window_s": 86_400, "contacts": first + repeat, "resolved_calls": first,
            "unresolved_calls": repeat, **fields}


def test_fcr_records_join_their_interval_records_in_any_order():
    nine, quarter = interval_record("2025-03-03T09:00"), interval_record("2025-03-03T09:15")
    loaded = collect([_fcr("2025-03-03T09:15", 3, 1), nine, quarter, _fcr("2025-03-03T09:00", 8, 2),
                      _fcr("2025-03-03T10:00", 1, 0)])
    assert [(r.get("resolved_calls"), r.get("unresolved_calls")) for r in loaded.records] == [
        (8, 2), (3, 1)]
    assert loaded.counts["fcr_read"] == 3 and loaded.counts["fcr_joined"] == 2
    assert loaded.counts["read"] == 2  # interval records only


@pytest.mark.parametrize("bad", [{"resolved_calls": -1}, {"unresolved_calls": "2"}, {"tenant": None},
                                 {"fcr_window_s": None}])
def test_a_damaged_fcr_record_names_its_place(bad):
    with pytest.raises(CallsloError, match="record 1: field"):
        collect([_fcr("2025-03-03T09:00", 1, 1, **bad)])
