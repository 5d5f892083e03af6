"""Expected arrivals and handle time of an interval: the same interval of the same weekday over
past weeks, falling back to an exponentially weighted moving average (EWMA) of the queue's
recent intervals.

Weeks are counted in UTC (intervals are aligned in UTC); across a daylight-saving change a
local-time profile shifts by an hour for the weeks before it. A past week in which the queue
was already known but has no record counts as 0 arrivals: the engine writes no record for an
interval without calls (docs/metrics.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Expected", "SeasonalForecast", "WEEK_MS"]

WEEK_MS = 7 * 86_400_000


@dataclass(frozen=True)
class Expected:
    """A forecast for one interval. ``method`` is "seasonal" (``weeks`` past weeks), "ewma",
    or None when the queue has no history (then ``arrivals`` is None)."""

    arrivals: float | None
    aht_s: float | None
    method: str | None
    weeks: int = 0


@dataclass
class _Series:
    first_start_ms: int
    # interval start -> (arrivals, handle seconds, handled calls)
    rows: dict[int, tuple[int, float, int]] = field(default_factory=dict)
    ewma_arrivals: float | None = None
    ewma_aht_s: float | None = None
    last_start_ms: int | None = None


class SeasonalForecast:
    """Per-queue history of arrivals (``entered``) and handle time, and forecasts from it."""

    def __init__(self, interval_s: int, weeks: int = 4, alpha: float = 0.3) -> None:
        self.interval_ms = interval_s * 1000
        self.weeks = weeks
        self.alpha = alpha
        self._series: dict[tuple[str, str], _Series] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        """Learn one final interval record (each interval once, in order per queue)."""
        key = (record["tenant"], record["queue"])
        start = record["interval_start_ms"]
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(first_start_ms=start)
        if start in series.rows:
            return
        handled = record["handled"]
        handle_s = (record["aht_s"] or 0.0) * handled
        series.rows[start] = (record["entered"], handle_s, handled)
        series.first_start_ms = min(series.first_start_ms, start)
        if series.last_start_ms is not None and start <= series.last_start_ms:
            return  # an older interval learned late: the profile has it, the EWMA moved on
        arrivals = float(record["entered"])
        if series.ewma_arrivals is None:
            series.ewma_arrivals = arrivals
        else:
            # Intervals without a record had no calls: decay over them as zeros.
            gap = (start - series.last_start_ms) // self.interval_ms - 1
            decayed = series.ewma_arrivals * (1 - self.alpha) ** max(gap, 0)
            series.ewma_arrivals = self.alpha * arrivals + (1 - self.alpha) * decayed
        if handled and record["aht_s"] is not None:
            aht = float(record["aht_s"])
            series.ewma_aht_s = aht if series.ewma_aht_s is None else (
                self.alpha * aht + (1 - self.alpha) * series.ewma_aht_s)
        series.last_start_ms = start

    def expected(self, tenant: str, queue: str, start_ms: int) -> Expected:
        """Forecast for the interval starting at ``start_ms``."""
        series = self._series.get((tenant, queue))
        if series is None:
            return Expected(None, None, None)
        known = [start_ms - k * WEEK_MS for k in range(1, self.weeks + 1)
                 if start_ms - k * WEEK_MS >= series.first_start_ms]
        if known:
            rows = [series.rows.get(s, (0, 0.0, 0)) for s in known]
            arrivals = sum(r[0] for r in rows) / len(rows)
            handled = sum(r[2] for r in rows)
            aht = sum(r[1] for r in rows) / handled if handled else series.ewma_aht_s
            return Expected(arrivals, aht, "seasonal", len(known))
        arrivals = series.ewma_arrivals
        if series.last_start_ms is not None and start_ms > series.last_start_ms:
            gap = (start_ms - series.last_start_ms) // self.interval_ms - 1
            arrivals = arrivals * (1 - self.alpha) ** max(gap, 0)
        return Expected(arrivals, series.ewma_aht_s, "ewma")

    def trim(self, before_ms: int) -> None:
        """Forget intervals starting before ``before_ms`` (the profile needs ``weeks``)."""
        for series in self._series.values():
            for start in [s for s in series.rows if s < before_ms]:
                del series.rows[start]

    def queues(self) -> list[tuple[str, str]]:
        return sorted(self._series)
