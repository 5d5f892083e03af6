"""A factory of consistent interval records (slo.queue-intervals.v1) for the report's tests."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from streams.records import service_level

INTERVAL_MS = 900_000


def at_ms(text: str) -> int:
    """Epoch ms of an ISO time; a time without offset is UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def interval_record(start: str | int, *, tenant: str = "acme", queue: str = "support",
                    answered: int = 10, answered_within: int | None = None,
                    abandoned: int = 0, abandoned_within: int = 0, dequeued: int = 0,
                    short_abandoned: int = 0, sl_target: float = 0.8,
                    sl_formula: str = "offered", threshold_s: float = 20.0,
                    handled: int | None = None, transferred: int = 0, asa_s: float | None = None,
                    aht_s: float | None = 200.0, wait_unknown: int = 0,
                    max_wait_s: float | None = 30.0, interval_ms: int = INTERVAL_MS
                    ) -> dict[str, Any]:
    """A record whose derived fields follow docs/metrics.md from the counts given."""
    start_ms = at_ms(start) if isinstance(start, str) else start
    within = answered if answered_within is None else answered_within
    handled = answered if handled is None else handled
    offered = answered + abandoned + dequeued
    sl = service_level(sl_formula, within, abandoned_within, answered, abandoned, offered)
    return {
        "tenant": tenant, "queue": queue,
        "interval_start_ms": start_ms, "interval_end_ms": start_ms + interval_ms,
        "threshold_s": threshold_s, "sl_formula": sl_formula, "sl_target": sl_target,
        "entered": offered + short_abandoned, "offered": offered, "answered": answered,
        "abandoned": abandoned, "short_abandoned": short_abandoned, "dequeued": dequeued,
        "answered_within": within, "abandoned_within": abandoned_within,
        "service_level": sl, "sl_met": None if sl is None else sl >= sl_target,
        "asa_s": (None if answered == 0 else 5.0) if asa_s is None else asa_s,
        "abandon_rate": abandoned / offered if offered else None,
        "handled": handled, "aht_s": aht_s if handled else None,
        "max_wait_s": max_wait_s, "transferred": transferred, "wait_unknown": wait_unknown,
        "wait_p50_s": 4.0, "wait_p90_s": 12.0, "wait_p95_s": 15.0, "wait_p99_s": 25.0,
    }
