"""`callslo plan`: required agents of a day from history, rostered agents, break placement."""

from __future__ import annotations

import json
from datetime import date, time
from zoneinfo import ZoneInfo

import orjson
import pytest

from kernels.erlang import required_agents
from streams import cli
from streams.errors import CallsloError
from streams.slo.forecast import WEEK_MS
from streams.slo.plan import Shift, plan_day, read_roster
from tests.unit.slo.report_records import at_ms, interval_record

I = 900_000
DAY = date(2025, 3, 10)  # a Monday
UTC = ZoneInfo("UTC")


def clock(text: str) -> time:
    return time.fromisoformat(text)


def history(calls_at: dict[str, int]) -> list[dict]:
    """The four Mondays before DAY with ``calls`` in the intervals starting at the given times."""
    records = []
    for week in range(4, 0, -1):
        for clock, calls in calls_at.items():
            start = at_ms(f"2025-03-10T{clock}") - week * WEEK_MS
            records.append(interval_record(start, answered=calls, aht_s=180.0))
    return sorted(records, key=lambda r: r["interval_start_ms"])


def test_required_agents_per_interval_and_rostered_counts():
    records = history({"09:00": 100, "09:15": 40})
    shifts = [Shift("ann", clock("09:00"), clock("17:00")),
              Shift("bob", clock("09:10"), clock("13:00"), lunch_minutes=0, break_minutes=0)]
    plan = plan_day(records, shifts, DAY, UTC, 900)
    slots = {s["start_ms"]: s for s in plan.slots}
    nine, quarter = slots[at_ms("2025-03-10T09:00")], slots[at_ms("2025-03-10T09:15")]
    assert nine["arrivals"] == 100 and nine["aht_s"] == 180.0
    assert nine["required"] == required_agents(100, 900, 180.0, 20.0, 0.8).row()["agents"]
    assert quarter["required"] == required_agents(40, 900, 180.0, 20.0, 0.8).row()["agents"]
    # bob starts at 09:10: the last 5 of the 15 minutes of the 09:00 interval.
    assert nine["rostered"] == pytest.approx(1 + 5 / 15)
    assert quarter["rostered"] == pytest.approx(2.0)
    # An interval without history of calls needs nobody (the queue was known: 0 arrivals).
    assert slots[at_ms("2025-03-10T14:00")]["required"] == 0
    assert len(plan.slots) == 96


def test_breaks_go_where_the_surplus_is_largest_and_inside_the_allowed_part():
    # Busy mornings and afternoons, a quiet 12:00-13:00: lunch belongs there.
    busy = {f"{h:02d}:{m:02d}": 60 for h in range(8, 17) for m in (0, 15, 30, 45)}
    busy.update({f"12:{m:02d}": 5 for m in (0, 15, 30, 45)})
    records = history(busy)
    shifts = [Shift(f"a{n}", clock("08:00"), clock("17:00")) for n in range(6)]
    plan = plan_day(records, shifts, DAY, UTC, 900)
    lunches = [b["lunch"] for b in plan.breaks]
    noon, one = at_ms("2025-03-10T12:00"), at_ms("2025-03-10T13:00")
    assert all(noon <= start and end <= one for start, end in lunches)
    for b in plan.breaks:
        start, end = b["break"]
        assert at_ms("2025-03-10T09:00") <= start and end <= at_ms("2025-03-10T16:00")
        assert end - start == 15 * 60_000
        assert end <= b["lunch"][0] or start >= b["lunch"][1]
    on_break = sum(s["on_break"] for s in plan.slots)
    assert on_break == pytest.approx(6 * (30 + 15) / 15)


def test_roster_errors_name_the_line(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("agent,start,end\nann,09:00,17:00\nbob,9am,17:00\n")
    with pytest.raises(CallsloError, match="line 3: start '9am' is not a clock time"):
        read_roster(roster)
    roster.write_text("agent,start,end\nann,17:00,09:00\n")
    with pytest.raises(CallsloError, match="line 2: end 09:00 is not after start 17:00"):
        read_roster(roster)
    roster.write_text("name,start,end\n")
    with pytest.raises(CallsloError, match="missing agent"):
        read_roster(roster)


def test_plan_command_from_a_file(tmp_path, capsys):
    records = tmp_path / "intervals.jsonl"
    records.write_bytes(b"\n".join(orjson.dumps(r) for r in history({"10:00": 80})))
    roster = tmp_path / "roster.csv"
    roster.write_text("agent,start,end,break_minutes,lunch_minutes\nann,08:00,16:00,15,60\n"
                      "bob,10:00,14:00,,0\n")
    assert cli.main(["plan", "--date", "2025-03-10", "--roster", str(roster), "--source",
                     str(records), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    ten = [s for s in plan["intervals"] if s["start"] == "10:00"][0]
    assert ten["required"] == required_agents(80, 900, 180.0, 20.0, 0.8).row()["agents"]
    assert ten["rostered"] == 2.0
    ann = plan["breaks"][0]
    assert ann["agent"] == "ann" and ann["lunch"]["end"] > ann["lunch"]["start"]
    assert plan["breaks"][1] == {"agent": "bob", "lunch": None,
                                 "break": plan["breaks"][1]["break"]}
    assert cli.main(["plan", "--date", "2025-03-10", "--roster", str(roster), "--source",
                     str(records)]) == 0
    text = capsys.readouterr().out
    assert "acme/support on 2025-03-10" in text and "ann" in text
    assert cli.main(["plan", "--date", "2025-02-01", "--roster", str(roster), "--source",
                     str(records)]) == 2
    assert "no interval records" in capsys.readouterr().err
