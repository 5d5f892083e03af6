"""Reading the engine's output topics from the command line (``callslo records``)."""

from __future__ import annotations

import sys
from typing import IO, Any

import orjson

from streams.settings import Settings
from streams.topic_reader import read_topic
from streams.topics import partition_ids

__all__ = ["print_interval_records", "format_record"]

_HEADER = (f"{'tenant/queue':<24} {'interval (UTC)':<17} {'offered':>7} {'SL':>6} {'target':>6} "
           f"{'ASA s':>6} {'aband%':>6} {'p90 s':>6} {'AHT s':>6}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_record(r: dict[str, Any]) -> str:
    """One line of the table ``callslo records`` prints."""
    import datetime as dt

    start = dt.datetime.fromtimestamp(r["interval_start_ms"] / 1000, dt.timezone.utc)
    met = "" if r["sl_met"] is None else (" ok" if r["sl_met"] else " MISS")
    return (f"{r['tenant'] + '/' + r['queue']:<24} {start:%Y-%m-%d %H:%M}  {r['offered']:>7} "
            f"{_pct(r['service_level']):>6} {_pct(r['sl_target']):>6} {_num(r['asa_s']):>6} "
            f"{_pct(r['abandon_rate']):>6} {_num(r['wait_p90_s']):>6} {_num(r['aht_s']):>6}{met}")


async def print_interval_records(settings: Settings, *, follow: bool, as_json: bool,
                                 out: IO[str] = sys.stdout) -> int:
    """Print every record on the intervals topic; with ``follow``, keep printing new ones."""
    topic = settings.topics.intervals
    partitions = await partition_ids(settings.kafka, topic)
    if not partitions:
        print(f"no topic {topic} on {settings.kafka.bootstrap} (has a worker run?)", file=out)
        return 0
    if not as_json:
        print(_HEADER, file=out)
    printed = 0
    async for record in read_topic(settings.kafka, topic, partitions, "records", follow=follow):
        value = orjson.loads(record.value)
        print(orjson.dumps(value).decode() if as_json else format_record(value),
              file=out, flush=True)
        printed += 1
    return printed
