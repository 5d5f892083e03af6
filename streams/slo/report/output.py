"""Writing the report's files: the interval CSV and the JSON summary."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterable

import orjson

from streams.errors import CallsloError
from streams.slo.report.load import Period
from streams.slo.report.summary import sl_terms

__all__ = ["CSV_COLUMNS", "write_csv", "write_json", "write_text"]

#: The interval CSV: the record's fields (docs/metrics.md), the local start time, and the
#: service level's own terms so a spreadsheet can recompute period figures from counts.
CSV_COLUMNS = (
    "tenant", "queue", "interval_start_local", "interval_start_ms", "interval_end_ms",
    "threshold_s", "sl_formula", "sl_target", "entered", "offered", "answered", "abandoned",
    "short_abandoned", "dequeued", "answered_within", "abandoned_within", "service_level",
    "sl_met", "sl_good", "sl_denominator", "asa_s", "abandon_rate", "handled", "aht_s",
    "max_wait_s", "transferred", "wait_unknown", "wait_p50_s", "wait_p90_s", "wait_p95_s",
    "wait_p99_s", "dispositioned", "resolved_calls", "unresolved_calls")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_csv(path: Path, records: Iterable[dict[str, Any]], period: Period) -> None:
    """One row per interval of the report, in (tenant, queue, interval start) order."""
    with _open(path, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for r in records:
            good, denominator = sl_terms(r)
            row = {**r, "sl_good": good, "sl_denominator": denominator,
                   "interval_start_local": period.local(r["interval_start_ms"]).isoformat()}
            writer.writerow([_cell(row.get(name)) for name in CSV_COLUMNS])


def write_json(path: Path, value: Any) -> None:
    with _open(path) as out:
        out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def write_text(path: Path, text: str) -> None:
    with _open(path) as out:
        out.write(text)


def _open(path: Path, **options: Any):
    try:
        return open(path, "w", encoding="utf-8", **options)
    except OSError as exc:
        raise CallsloError(f"cannot write {path}: {exc.strerror}") from exc
