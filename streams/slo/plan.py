"""A day's staffing plan from history: required agents per interval, the roster's agents on
shift, and proposed break and lunch windows where the staffed surplus is largest.

Required agents come from the seasonal forecast (:mod:`streams.slo.forecast`) of the day's
intervals and Erlang C, or Erlang A when the queue's history gives a patience
(:mod:`streams.slo.staffing`). Breaks are placed one agent at a time, in shift-start order:
lunch first, then the break, each in the allowed part of the shift (lunch at least 2 h from
either end of the shift, a break at least 1 h, as far as the shift allows) where the smallest
surplus over the slots it covers is largest, the earliest on a tie; each placed break lowers
the surplus of its slots before the next agent is placed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

from streams.errors import CallsloError
from streams.slo.forecast import SeasonalForecast
from streams.slo.staffing import patience, staffing_record

__all__ = ["Shift", "read_roster", "DayPlan", "plan_day"]


@dataclass(frozen=True)
class Shift:
    """One agent's shift on the plan's day, local clock times."""

    agent: str
    start: time
    end: time
    break_minutes: int = 15
    lunch_minutes: int = 30


def _clock(text: str, where: str, column: str) -> time:
    try:
        return datetime.strptime(text.strip(), "%H:%M").time()
    except ValueError:
        raise CallsloError(f"{where}: {column} {text!r} is not a clock time HH:MM") from None


def _minutes(text: str | None, default: int, where: str, column: str) -> int:
    if text is None or not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        raise CallsloError(f"{where}: {column} {text!r} is not a whole number of minutes") from None
    if not 0 <= value <= 240:
        raise CallsloError(f"{where}: {column} must be 0..240 minutes, got {value}")
    return value


def read_roster(path: Path) -> list[Shift]:
    """Shifts from a CSV with a header: ``agent,start,end`` and optionally ``break_minutes``
    (default 15) and ``lunch_minutes`` (default 30); clock times ``HH:MM`` in the plan's zone,
    ``end`` after ``start`` on the same day."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CallsloError(f"cannot read roster {path}: {exc.strerror}") from exc
    rows = csv.DictReader(text.splitlines())
    missing = {"agent", "start", "end"} - set(rows.fieldnames or [])
    if missing:
        raise CallsloError(f"roster {path}: header must name agent, start, end (missing "
                           f"{', '.join(sorted(missing))})")
    shifts = []
    for number, row in enumerate(rows, start=2):
        where = f"roster {path} line {number}"
        if not (row.get("agent") or "").strip():
            raise CallsloError(f"{where}: agent is empty")
        start, end = _clock(row["start"] or "", where, "start"), _clock(row["end"] or "", where, "end")
        if end <= start:
            raise CallsloError(f"{where}: end {row['end']} is not after start {row['start']} "
                               "(shifts across midnight are not supported)")
        shifts.append(Shift(row["agent"].strip(), start, end,
                            _minutes(row.get("break_minutes"), 15, where, "break_minutes"),
                            _minutes(row.get("lunch_minutes"), 30, where, "lunch_minutes")))
    if not shifts:
        raise CallsloError(f"roster {path} has no shifts")
    return shifts


@dataclass
class DayPlan:
    """Per interval of the day (``slots``) and per agent (``breaks``)."""

    tenant: str
    queue: str
    day: date
    zone: ZoneInfo
    interval_s: int
    slots: list[dict[str, Any]] = field(default_factory=list)
    breaks: list[dict[str, Any]] = field(default_factory=list)


def plan_day(records: Sequence[Mapping[str, Any]], shifts: Sequence[Shift], day: date,
             zone: ZoneInfo, interval_s: int, *, weeks: int = 4, patience_days: int = 7,
             alpha: float = 0.3) -> DayPlan:
    """The plan of one queue for ``day`` from its interval records before that day."""
    if not records:
        raise CallsloError("no interval records before the day to plan from")
    tenant, queue = records[-1]["tenant"], records[-1]["queue"]
    day_start = _local_ms(day, time(0), zone)
    day_end = _local_ms(day + timedelta(days=1), time(0), zone)
    history = sorted((r for r in records if r["interval_start_ms"] < day_start),
                     key=lambda r: r["interval_start_ms"])
    if not history:
        raise CallsloError(f"no interval records of {tenant}/{queue} before {day}")
    forecast = SeasonalForecast(interval_s, weeks, alpha)
    for record in history:
        forecast.add(record)
    latest = history[-1]
    patience_ = patience([r for r in history
                          if r["interval_start_ms"] >= day_start - patience_days * 86_400_000])
    interval_ms = interval_s * 1000
    plan = DayPlan(tenant, queue, day, zone, interval_s)
    start = day_start - day_start % interval_ms
    while start < day_end:
        expected = forecast.expected(tenant, queue, start)
        row = staffing_record(
            tenant=tenant, queue=queue, interval_start_ms=start, interval_s=interval_s,
            kind="plan", arrivals=expected.arrivals, aht_s=expected.aht_s,
            threshold_s=float(latest["threshold_s"]), sl_target=float(latest["sl_target"]),
            patience_=patience_, staffed=None, staffed_coverage=None, handle_s=None,
            forecast_method=expected.method)
        rostered = sum(_overlap(s, day, zone, start, start + interval_ms) / interval_ms
                       for s in shifts)
        plan.slots.append({"start_ms": start, "arrivals": expected.arrivals,
                           "aht_s": expected.aht_s, "required": row["required"],
                           "rostered": rostered, "on_break": 0.0, "reason": row["reason"]})
        start += interval_ms
    _place_breaks(plan, shifts)
    for slot in plan.slots:
        working = slot["rostered"] - slot["on_break"]
        slot["surplus"] = None if slot["required"] is None else working - slot["required"]
    return plan


def _local_ms(day: date, clock: time, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, clock, tzinfo=zone).timestamp() * 1000)


def _overlap(shift: Shift, day: date, zone: ZoneInfo, from_ms: int, to_ms: int) -> int:
    begin, end = _local_ms(day, shift.start, zone), _local_ms(day, shift.end, zone)
    return max(0, min(end, to_ms) - max(begin, from_ms))


def _place_breaks(plan: DayPlan, shifts: Sequence[Shift]) -> None:
    interval_ms = plan.interval_s * 1000
    first_ms = plan.slots[0]["start_ms"] if plan.slots else 0
    surplus = [(s["rostered"] - s["required"]) if s["required"] is not None else 0.0
               for s in plan.slots]
    for shift in sorted(shifts, key=lambda s: (s.start, s.agent)):
        begin = _local_ms(plan.day, shift.start, plan.zone)
        end = _local_ms(plan.day, shift.end, plan.zone)
        taken: list[tuple[int, int]] = []
        placed: dict[str, Any] = {"agent": shift.agent}
        for name, minutes, margin_ms in (("lunch", shift.lunch_minutes, 2 * 3_600_000),
                                         ("break", shift.break_minutes, 3_600_000)):
            if minutes == 0:
                placed[name] = None
                continue
            length_ms = minutes * 60_000
            choice = _best_window(begin, end, length_ms, margin_ms, interval_ms, first_ms,
                                  surplus, taken)
            if choice is None:
                placed[name] = None
                continue
            taken.append((choice, choice + length_ms))
            for index in range(len(plan.slots)):
                slot_start = first_ms + index * interval_ms
                off = max(0, min(choice + length_ms, slot_start + interval_ms) - max(choice, slot_start))
                if off:
                    surplus[index] -= off / interval_ms
                    plan.slots[index]["on_break"] += off / interval_ms
            placed[name] = (choice, choice + length_ms)
        plan.breaks.append(placed)


def _best_window(begin: int, end: int, length_ms: int, margin_ms: int, interval_ms: int,
                 first_ms: int, surplus: list[float], taken: list[tuple[int, int]]) -> int | None:
    """Start of the window with the largest smallest surplus, or None when none fits."""
    if end - begin < length_ms:
        return None
    # Keep the margin from both ends when the shift is long enough, else shrink it evenly.
    margin = min(margin_ms, max(0, (end - begin - length_ms) // 2))
    best: tuple[float, int] | None = None
    at = begin + margin
    at += (-(at - first_ms)) % interval_ms  # windows start on interval boundaries
    while at + length_ms <= end - margin:
        if all(at + length_ms <= s or at >= e for s, e in taken):
            first = (at - first_ms) // interval_ms
            last = (at + length_ms - 1 - first_ms) // interval_ms
            covered = [surplus[i] for i in range(first, last + 1) if 0 <= i < len(surplus)]
            if covered and (best is None or min(covered) > best[0]):
                best = (min(covered), at)
        at += interval_ms
    return None if best is None else best[1]
