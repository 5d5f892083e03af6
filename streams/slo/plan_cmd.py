"""``callslo plan``: required agents per interval of a day, from history, with proposed break and
lunch windows for a roster of shifts.

Example::

    callslo plan --date 2025-03-10 --roster roster.csv --tenant acme --queue support --tz Europe/Berlin
    callslo plan --date 2025-03-10 --roster roster.csv --source intervals.jsonl --json

Exit code 0 on success, 2 on bad options or input (message on stderr). See docs/slo.md.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.errors import CallsloError
from streams.settings import Settings
from streams.slo.plan import DayPlan, plan_day, read_roster
from streams.slo.report.load import Collector, Period, read_file, read_intervals_topic
from streams.slo.report.progress import Progress

__all__ = ["add_parser", "run", "make_plan"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``plan`` subcommand on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "plan", help="required agents per interval of a day, and break/lunch windows for a roster",
        description="Forecasts each interval of --date from the interval records of the weeks "
                    "before it (same weekday and time, else a moving average), computes the "
                    "Erlang requirement, counts the roster's agents on shift and proposes "
                    "break and lunch windows where the staffed surplus is largest.")
    parser.add_argument("--date", required=True, metavar="DATE", help="the day to plan, YYYY-MM-DD")
    parser.add_argument("--roster", type=Path, required=True, metavar="CSV",
                        help="shifts: agent,start,end[,break_minutes,lunch_minutes], HH:MM")
    parser.add_argument("--tenant", default=None, help="the tenant (needed when there are several)")
    parser.add_argument("--queue", default=None, help="the queue (needed when there are several)")
    parser.add_argument("--tz", default="UTC", help="time zone of the day and the roster (default UTC)")
    parser.add_argument("--source", default="topic", metavar="topic|FILE",
                        help="'topic' (topics.intervals of the settings) or a JSON-lines file of "
                             "interval records")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--config", type=Path, default=None, help="settings file (TOML)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the plan; return the exit code."""
    settings = Settings.load(args.config)
    plan = make_plan(args, settings)
    print(json.dumps(plan_json(plan)) if args.json else plan_text(plan))
    return 0


def make_plan(args: argparse.Namespace, settings: Settings) -> DayPlan:
    """Read the roster and the history, and plan the day."""
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        raise CallsloError(f"--date {args.date!r} is not a date YYYY-MM-DD") from None
    shifts = read_roster(args.roster)
    slo = settings.slo
    history_days = max(7 * slo.forecast_weeks, slo.patience_days)
    period = Period.from_options(str(day - timedelta(days=history_days)),
                                 str(day - timedelta(days=1)), args.tz)
    collector = Collector(period, args.tenant, Progress("plan", enabled=False))
    if args.source == "topic":
        read_intervals_topic(settings, collector)
    else:
        read_file(args.source, collector)
    records = collector.result().records
    queues = sorted({(r["tenant"], r["queue"]) for r in records
                     if args.queue is None or r["queue"] == args.queue})
    if not queues:
        raise CallsloError(f"no interval records between {period.first_day} and "
                           f"{period.last_day} ({args.tz})"
                           + (f" for queue {args.queue!r}" if args.queue else ""))
    if len(queues) > 1:
        names = ", ".join(f"{t}/{q}" for t, q in queues[:10])
        raise CallsloError(f"the history has several queues ({names}); choose one with "
                           "--tenant and --queue")
    chosen = [r for r in records if (r["tenant"], r["queue"]) == queues[0]]
    return plan_day(chosen, shifts, day, period.zone, settings.engine.interval_s,
                    weeks=slo.forecast_weeks, patience_days=slo.patience_days,
                    alpha=slo.forecast_ewma_alpha)


def _clock(plan: DayPlan, time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, plan.zone).strftime("%H:%M")


def plan_json(plan: DayPlan) -> dict[str, Any]:
    """The plan as one JSON-ready object (clock times local, ``HH:MM``)."""
    return {
        "tenant": plan.tenant, "queue": plan.queue, "date": str(plan.day),
        "tz": str(plan.zone), "interval_s": plan.interval_s,
        "intervals": [{"start": _clock(plan, s["start_ms"]), "start_ms": s["start_ms"],
                       **{k: s[k] for k in ("arrivals", "aht_s", "required", "rostered",
                                            "on_break", "surplus", "reason")}}
                      for s in plan.slots],
        "breaks": [{"agent": b["agent"],
                    **{name: None if b[name] is None else
                       {"start": _clock(plan, b[name][0]), "end": _clock(plan, b[name][1])}
                       for name in ("lunch", "break")}} for b in plan.breaks],
    }


def plan_text(plan: DayPlan) -> str:
    """The plan as a table for a terminal; intervals without calls or agents are left out."""
    lines = [f"{plan.tenant}/{plan.queue} on {plan.day} ({plan.zone}), "
             f"{plan.interval_s // 60}-minute intervals",
             "start  arrivals   aht_s  required  rostered  on_break  surplus"]
    for s in plan.slots:
        if not s["arrivals"] and not s["rostered"]:
            continue
        lines.append(
            f"{_clock(plan, s['start_ms'])}  {_num(s['arrivals'], 8, 1)}  {_num(s['aht_s'], 6, 0)}"
            f"  {_num(s['required'], 8, 0)}  {_num(s['rostered'], 8, 1)}  "
            f"{_num(s['on_break'], 8, 1)}  {_num(s['surplus'], 7, 1)}")
    lines.append("")
    lines.append("agent        lunch          break")
    for b in plan.breaks:
        cells = ["-" if b[name] is None else
                 f"{_clock(plan, b[name][0])}-{_clock(plan, b[name][1])}"
                 for name in ("lunch", "break")]
        lines.append(f"{b['agent']:<12} {cells[0]:<14} {cells[1]}")
    return "\n".join(lines)


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.{digits}f}"
