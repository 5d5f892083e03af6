"""``callslo report``: the contract-period SLA report from interval records.

Example::

    callslo report --from 2025-03-01 --to 2025-03-31 --tz Europe/Berlin --out report/
    callslo report --from 2025-03-03 --to 2025-03-03 --source intervals.jsonl --tenant acme --out r/

Writes ``report.html``, ``intervals.csv`` and ``summary.json`` into ``--out`` (see
docs/report.md). Exit code 0 on success, 2 on bad options or input (message on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from streams.errors import CallsloError
from streams.settings import Settings
from streams.slo.report.html import render_html
from streams.slo.report.load import Collector, Loaded, Period, read_file, read_intervals_topic
from streams.slo.report.output import write_csv, write_json, write_text
from streams.slo.report.progress import Progress
from streams.slo.report.summary import build_report

__all__ = ["add_parser", "run", "make_report"]

HTML_NAME, CSV_NAME, JSON_NAME = "report.html", "intervals.csv", "summary.json"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "report", help="contract-period SLA report: HTML with charts, interval CSV, JSON summary",
        description="Reads final interval records (slo.queue-intervals.v1) from the topic or a "
                    "JSON-lines file, keeps the last record of each interval, and reports the "
                    "days --from .. --to (both included) in --tz per tenant and queue. "
                    "See docs/report.md.")
    parser.add_argument("--from", dest="from_day", required=True, metavar="DATE",
                        help="first day of the period, YYYY-MM-DD")
    parser.add_argument("--to", dest="to_day", required=True, metavar="DATE",
                        help="last day of the period (included), YYYY-MM-DD")
    parser.add_argument("--tz", default="UTC",
                        help="time zone of the days and of the report's clock times (default UTC)")
    parser.add_argument("--tenant", default=None, help="only this tenant (default: all)")
    parser.add_argument("--source", default="topic", metavar="topic|FILE",
                        help="'topic' (topics.intervals of the settings, the default) or a "
                             "JSON-lines file of interval records (- for stdin), e.g. from "
                             "`callslo replay`")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="directory for report.html, intervals.csv, summary.json")
    parser.add_argument("--worst", type=int, default=10, metavar="N",
                        help="worst intervals listed per queue and tenant (default 10)")
    parser.add_argument("--progress", action="store_true",
                        help="show read progress on stderr even when it is not a terminal")
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (TOML) for the broker and topic; environment "
                             "variables override it")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The ``report`` subcommand: read, summarise, write the three files."""
    settings = Settings.load(args.config) if args.source == "topic" else None
    written = make_report(args, settings)
    for path in written:
        print(path)
    return 0


def make_report(args: argparse.Namespace, settings: Settings | None) -> list[Path]:
    """Build the report for parsed options; ``settings`` is needed only for the topic."""
    if args.worst < 0:
        raise CallsloError("--worst must be >= 0")
    period = Period.from_options(args.from_day, args.to_day, args.tz)
    loaded, source = _load(args, settings, period)
    if not loaded.records:
        raise CallsloError(
            f"no interval records for {period.first_day} .. {period.last_day} ({period.tz_name})"
            + (f" and tenant {args.tenant!r}" if args.tenant else "")
            + f" in {source}: {loaded.counts['read']} records read, "
            f"{loaded.counts['outside_period']} outside the period, "
            f"{loaded.counts['other_tenants']} of other tenants")
    report, groups = build_report(loaded, period, args.worst)
    report["source"] = source
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CallsloError(f"cannot create {args.out}: {exc.strerror}") from exc
    paths = [args.out / HTML_NAME, args.out / CSV_NAME, args.out / JSON_NAME]
    write_text(paths[0], render_html(report, groups, period, source))
    write_csv(paths[1], loaded.records, period)
    write_json(paths[2], report)
    return paths


def _load(args: argparse.Namespace, settings: Settings | None,
          period: Period) -> tuple[Loaded, str]:
    progress = Progress("report", enabled=args.progress or sys.stderr.isatty())
    collector = Collector(period, args.tenant, progress)
    if args.source == "topic":
        if settings is None:
            raise CallsloError("--source topic needs settings (--config or CALLSLO_* variables)")
        read_intervals_topic(settings, collector)
        source = f"topic {settings.topics.intervals} on {settings.kafka.bootstrap}"
    else:
        read_file(args.source, collector)
        source = "stdin" if args.source == "-" else f"file {args.source}"
    return collector.result(), source
