"""Live staffing: time-weighted staffed agents from realtime snapshots, caller patience from a
queue's own records, and the ``slo.staffing.v1`` record of an interval.

Staffed agents are an approximation: interval records carry no agent time, so the meter holds
each snapshot's ``staffed`` (exact at its ``as_of_ms``) until the next snapshot, at most
``max_hold_ms``, and averages over the interval; ``staffed_coverage`` says which share of the
interval that covered. The engine sends a snapshot at least every minute while a queue has
agents, so with the defaults the error is below a minute of one agent's changes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping

from kernels.erlang import required_agents_row

__all__ = ["StaffedMeter", "Patience", "patience", "staffing_record", "STAFFING_SCHEMA"]

STAFFING_SCHEMA = "slo.staffing.v1"


@dataclass
class _Cursor:
    at_ms: int
    staffed: int


class StaffedMeter:
    """Agent-milliseconds per queue and interval, from consecutive snapshots."""

    def __init__(self, interval_s: int, max_hold_s: float = 900.0) -> None:
        self.interval_ms = interval_s * 1000
        self.max_hold_ms = int(max_hold_s * 1000)
        self._cursor: dict[tuple[str, str], _Cursor] = {}
        # (tenant, queue) -> interval start -> [agent_ms, covered_ms]
        self._buckets: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(dict)

    def observe(self, tenant: str, queue: str, as_of_ms: int, staffed: int) -> None:
        """A snapshot: the previous one's count held from its time to this one's."""
        key = (tenant, queue)
        cursor = self._cursor.get(key)
        if cursor is not None and as_of_ms > cursor.at_ms:
            self._spread(key, cursor.at_ms, min(as_of_ms, cursor.at_ms + self.max_hold_ms),
                         cursor.staffed)
        if cursor is None or as_of_ms >= cursor.at_ms:
            self._cursor[key] = _Cursor(as_of_ms, staffed)

    def _spread(self, key: tuple[str, str], from_ms: int, to_ms: int, staffed: int) -> None:
        buckets = self._buckets[key]
        at = from_ms
        while at < to_ms:
            start = at - at % self.interval_ms
            end = min(to_ms, start + self.interval_ms)
            bucket = buckets.setdefault(start, [0, 0])
            bucket[0] += staffed * (end - at)
            bucket[1] += end - at
            at = end

    def take(self, tenant: str, queue: str, start_ms: int) -> tuple[float | None, float]:
        """``(average staffed agents, coverage)`` of a closed interval; the latest snapshot is
        held to the interval's end. ``None`` when no snapshot covered any of it."""
        key = (tenant, queue)
        end_ms = start_ms + self.interval_ms
        cursor = self._cursor.get(key)
        if cursor is not None and cursor.at_ms < end_ms:
            until = min(end_ms, cursor.at_ms + self.max_hold_ms)
            self._spread(key, cursor.at_ms, until, cursor.staffed)
            if until > cursor.at_ms:
                cursor.at_ms = until
        buckets = self._buckets[key]
        agent_ms, covered_ms = buckets.pop(start_ms, (0, 0))
        for old in [s for s in buckets if s < start_ms]:
            del buckets[old]  # snapshots of intervals already reported
        if covered_ms == 0:
            return None, 0.0
        return agent_ms / covered_ms, covered_ms / self.interval_ms

    def current(self, tenant: str, queue: str) -> int | None:
        cursor = self._cursor.get((tenant, queue))
        return None if cursor is None else cursor.staffed


@dataclass(frozen=True)
class Patience:
    """Mean caller patience and what it was estimated from."""

    patience_s: float | None
    basis: str


def patience(records: list[Mapping[str, Any]]) -> Patience:
    """Mean patience by the standard estimator: total time waited by answered and abandoned
    calls divided by the number of abandons (patience is then exponential, as Erlang A assumes).

    Records carry the waits of answered calls (``asa_s`` × answered of known wait) and of
    abandoned calls (``abandoned_wait_s``); records of an older engine lack the latter, and
    then the estimate is a lower bound and ``basis`` says so.
    """
    abandons = sum(r["abandoned"] for r in records)
    if abandons == 0:
        return Patience(None, "no abandons in the window: Erlang A equals Erlang C")
    # As in the SLA report, asa_s x answered: exact when no wait was unknown.
    waited = sum(r["asa_s"] * r["answered"] for r in records if r["asa_s"] is not None)
    with_abandoned = [r for r in records if r.get("abandoned_wait_s") is not None]
    waited += sum(r["abandoned_wait_s"] for r in with_abandoned)
    basis = ("waits of answered and abandoned calls" if len(with_abandoned) == len(records) else
             "waits of answered calls only (abandoned waits not in these records): a lower bound")
    if waited <= 0:
        return Patience(None, "no measured wait in the window")
    return Patience(waited / abandons, basis)


def _required(arrivals: float, interval_s: int, aht_s: float, threshold_s: float, target: float,
              patience_s: float | None) -> tuple[dict[str, Any] | None, str | None]:
    if not 0 < target < 1:
        return None, f"sl_target {target:g} cannot be staffed for (Erlang needs 0 < target < 1)"
    try:
        row = required_agents_row(float(arrivals), float(interval_s), float(aht_s),
                                  float(threshold_s), float(target), patience_s=patience_s)
    except ValueError as exc:
        return None, str(exc)
    return row, None


def staffing_record(*, tenant: str, queue: str, interval_start_ms: int, interval_s: int,
                    kind: str, arrivals: float | None, aht_s: float | None,
                    threshold_s: float, sl_target: float, patience_: Patience,
                    staffed: float | None, staffed_coverage: float | None,
                    handle_s: float | None, forecast_method: str | None,
                    quality: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``slo.staffing.v1`` record (docs/slo.md#staffing). ``kind`` is "closed" for an
    interval with its final record, "next" for the forecast of the interval after it.
    ``handle_s`` is the measured handle time of a closed interval (for occupancy)."""
    erlang_c = erlang_a = None
    reason = None
    if arrivals is None:
        reason = "no history for this queue"
    elif aht_s is None or aht_s <= 0:
        reason = "no handled call yet to measure AHT"
    else:
        erlang_c, reason = _required(arrivals, interval_s, aht_s, threshold_s, sl_target, None)
        if erlang_c is not None and patience_.patience_s is not None:
            erlang_a, reason = _required(arrivals, interval_s, aht_s, threshold_s, sl_target,
                                         patience_.patience_s)
    required = (erlang_a or erlang_c or {}).get("agents")
    traffic = None if erlang_c is None else erlang_c["traffic_erlangs"]
    if handle_s is None and traffic is not None:
        handle_s = traffic * interval_s
    occupancy = None
    if staffed and handle_s is not None:
        occupancy = handle_s / (staffed * interval_s)
    return {
        "schema": STAFFING_SCHEMA, "tenant": tenant, "queue": queue, "kind": kind,
        "interval_start_ms": interval_start_ms,
        "interval_end_ms": interval_start_ms + interval_s * 1000,
        "arrivals": arrivals, "aht_s": aht_s, "forecast_method": forecast_method,
        "threshold_s": threshold_s, "sl_target": sl_target, "traffic_erlangs": traffic,
        "required_erlang_c": None if erlang_c is None else erlang_c["agents"],
        "required_erlang_a": None if erlang_a is None else erlang_a["agents"],
        "required": required,
        "patience_s": patience_.patience_s, "patience_basis": patience_.basis,
        "staffed": staffed, "staffed_coverage": staffed_coverage,
        "gap": None if staffed is None or required is None else staffed - required,
        "occupancy": occupancy, "reason": reason, "quality": quality,
    }
