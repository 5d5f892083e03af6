"""Interval records in for the report: the period in a time zone, reading a file or the
intervals topic, checking each record, dropping repeats and keeping the period's records."""

from __future__ import annotations

import asyncio
import sys
from contextlib import aclosing
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from streams.errors import CallsloError
from streams.records import service_level
from streams.settings import Settings
from streams.slo.fcr import FCR_SCHEMA
from streams.slo.report.progress import Progress
from streams.topic_reader import read_topic
from streams.topics import partition_ids

__all__ = ["Period", "Collector", "Loaded", "check_record", "check_fcr", "read_file",
           "read_intervals_topic", "COUNT_FIELDS"]

#: The integer counts of a record; the report's totals are their sums.
COUNT_FIELDS = ("entered", "offered", "answered", "abandoned", "short_abandoned", "dequeued",
                "answered_within", "abandoned_within", "handled", "transferred", "wait_unknown")
#: Numbers the report reads that may be null in a record (docs/metrics.md says when).
_NULLABLE_NUMBERS = ("service_level", "asa_s", "abandon_rate", "aht_s", "max_wait_s")
_NUMBERS = ("threshold_s", "sl_target")
_TIMES = ("interval_start_ms", "interval_end_ms")


@dataclass(frozen=True)
class Period:
    """The report's period: whole days ``first_day`` .. ``last_day`` (both included) in
    ``zone``, as the half-open span ``[start_ms, end_ms)`` of epoch milliseconds."""

    first_day: date
    last_day: date
    zone: ZoneInfo
    start_ms: int
    end_ms: int

    @classmethod
    def from_options(cls, from_text: str, to_text: str, tz_name: str = "UTC") -> Period:
        """Parse ``--from``, ``--to`` and ``--tz``; a clear error for each kind of mistake."""
        first = _parse_day("--from", from_text)
        last = _parse_day("--to", to_text)
        if last < first:
            raise CallsloError(f"--to {last} is before --from {first}")
        try:
            zone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CallsloError(f"--tz {tz_name!r} is not a known time zone "
                               "(an IANA name such as UTC or Europe/Berlin)") from exc
        return cls(first, last, zone, _midnight_ms(first, zone),
                   _midnight_ms(last + timedelta(days=1), zone))

    @property
    def tz_name(self) -> str:
        return self.zone.key

    def contains(self, time_ms: int) -> bool:
        return self.start_ms <= time_ms < self.end_ms

    def local(self, time_ms: int) -> datetime:
        """``time_ms`` as a wall-clock time in the period's zone."""
        return datetime.fromtimestamp(time_ms / 1000, self.zone)


def _parse_day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CallsloError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from exc


def _midnight_ms(day: date, zone: ZoneInfo) -> int:
    return round(datetime.combine(day, time(0), tzinfo=zone).timestamp() * 1000)


def check_record(value: Any, where: str) -> dict[str, Any]:
    """``value`` when it is an interval record the report can use; otherwise an error that
    names ``where`` it came from and what is wrong."""
    if not isinstance(value, dict):
        raise CallsloError(f"{where}: not a JSON object")

    def need(name: str, ok: bool, expected: str) -> None:
        if name not in value:
            raise CallsloError(f"{where}: field {name!r} is missing (an slo.queue-intervals.v1 "
                               "record?)")
        if not ok:
            raise CallsloError(f"{where}: field {name!r} is {value[name]!r}, expected {expected}")

    for name in ("tenant", "queue", "sl_formula"):
        need(name, isinstance(value.get(name), str), "a string")
    for name in _TIMES + COUNT_FIELDS:
        v = value.get(name)
        need(name, type(v) is int and v >= 0, "an integer >= 0")
    for name in _NUMBERS:
        need(name, _is_number(value.get(name)), "a number")
    for name in _NULLABLE_NUMBERS:
        v = value.get(name)
        need(name, v is None or _is_number(v), "a number or null")
    need("sl_met", value.get("sl_met") is None or type(value["sl_met"]) is bool,
         "true, false or null")
    if value["interval_end_ms"] <= value["interval_start_ms"]:
        raise CallsloError(f"{where}: interval_end_ms is not after interval_start_ms")
    try:
        service_level(value["sl_formula"], 0, 0, 0, 0, 0)
    except ValueError as exc:
        raise CallsloError(f"{where}: {exc}") from exc
    return value


def check_fcr(value: Any, where: str) -> dict[str, Any]:
    """``value`` when it is a first-contact-resolution record (``slo.queue-fcr.v1``);
    otherwise an error naming ``where`` and the field."""
    if not isinstance(value, dict) or value.get("schema") != FCR_SCHEMA:
        raise CallsloError(f"{where}: not an {FCR_SCHEMA} record")
    for name in ("tenant", "queue"):
        if not isinstance(value.get(name), str):
            raise CallsloError(f"{where}: field {name!r} must be a string")
    for name in ("interval_start_ms", "interval_end_ms", "fcr_window_s", "resolved_calls",
                 "unresolved_calls"):
        v = value.get(name)
        if type(v) is not int or v < 0:
            raise CallsloError(f"{where}: field {name!r} is {v!r}, expected an integer >= 0")
    return value


def _is_number(v: Any) -> bool:
    return type(v) in (int, float) and v == v


@dataclass
class Loaded:
    """The period's records, one per (tenant, queue, interval start), sorted by that key, and
    what happened to the others."""

    records: list[dict[str, Any]]
    counts: Counter[str] = field(default_factory=Counter)


class Collector:
    """Keeps the last record of each (tenant, queue, interval start) that falls in the period
    (by its start) and belongs to the tenant asked for; counts the rest."""

    def __init__(self, period: Period, tenant: str | None, progress: Progress) -> None:
        self.period = period
        self.tenant = tenant
        self.progress = progress
        self.counts: Counter[str] = Counter()
        self._kept: dict[tuple[str, str, int], dict[str, Any]] = {}
        self._fcr: dict[tuple[str, str, int], dict[str, Any]] = {}

    def add(self, value: Any, where: str) -> None:
        if isinstance(value, dict) and value.get("schema") == FCR_SCHEMA:
            fcr = check_fcr(value, where)
            self.counts["fcr_read"] += 1
            self._fcr[(fcr["tenant"], fcr["queue"], fcr["interval_start_ms"])] = fcr
            return
        record = check_record(value, where)
        self.counts["read"] += 1
        self.progress.tick()
        if self.tenant is not None and record["tenant"] != self.tenant:
            self.counts["other_tenants"] += 1
            return
        if not self.period.contains(record["interval_start_ms"]):
            self.counts["outside_period"] += 1
            return
        key = (record["tenant"], record["queue"], record["interval_start_ms"])
        earlier = self._kept.get(key)
        if earlier is not None:
            # A redelivered record is identical; a different one means two producers (a
            # replay written next to a worker's output, say): the later one still wins.
            self.counts["duplicates"] += 1
            self.counts["duplicates_differing"] += earlier != record
        self._kept[key] = record

    def result(self) -> Loaded:
        """The kept records, each with the counts of its first-contact-resolution record
        (``resolved_calls``, ``unresolved_calls``) when one was read."""
        self.progress.done()
        records = []
        for key in sorted(self._kept):
            record = self._kept[key]
            fcr = self._fcr.get(key)
            if fcr is not None:
                record = {**record, "resolved_calls": fcr["resolved_calls"],
                          "unresolved_calls": fcr["unresolved_calls"]}
                self.counts["fcr_joined"] += 1
            records.append(record)
        counts = Counter(self.counts)
        counts["kept"] = len(records)
        for name in ("read", "duplicates", "duplicates_differing", "outside_period",
                     "other_tenants", "fcr_read", "fcr_joined"):
            counts[name] += 0  # present in the summary even when 0
        return Loaded(records, counts)


def read_file(path: str, collector: Collector) -> None:
    """Add every record of a JSON-lines file (``-`` for standard input)."""
    try:
        stream = sys.stdin.buffer if path == "-" else open(Path(path), "rb")
    except OSError as exc:
        raise CallsloError(f"cannot read {path}: {exc.strerror}") from exc
    name = "stdin" if path == "-" else path
    with stream:
        try:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise CallsloError(f"{name} line {number}: not valid JSON ({exc})") from exc
                collector.add(value, f"{name} line {number}")
        except OSError as exc:
            raise CallsloError(f"cannot read {path}: {exc.strerror}") from exc


def read_intervals_topic(settings: Settings, collector: Collector) -> None:
    """Add every record on the intervals topic (``topics.intervals``), read to its end, and
    every first-contact-resolution record (``topics.fcr``) when that topic exists."""
    asyncio.run(_read_topic(settings, settings.topics.intervals, collector))
    asyncio.run(_read_topic(settings, settings.topics.fcr, collector, required=False))


async def _read_topic(settings: Settings, topic: str, collector: Collector,
                      required: bool = True) -> None:
    partitions = await partition_ids(settings.kafka, topic)
    if not partitions:
        if not required:
            return
        raise CallsloError(f"no topic {topic} on {settings.kafka.bootstrap} (has a worker run?)")
    # aclosing: a bad record stops the read, and the consumer is closed right then.
    async with aclosing(read_topic(settings.kafka, topic, partitions, "report")) as messages:
        async for message in messages:
            where = f"{topic} partition {message.partition} offset {message.offset}"
            try:
                value = orjson.loads(message.value)
            except (orjson.JSONDecodeError, TypeError) as exc:
                raise CallsloError(f"{where}: not valid JSON ({exc})") from exc
            collector.add(value, where)
