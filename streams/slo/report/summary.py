"""The report's arithmetic: period service level from counts, error budget and its burn-down,
share of intervals meeting target, quality objectives, worst intervals, heat-map cells.

Every rate of a period is a ratio of summed counts, never a mean of interval percentages: an
interval with 3 calls must not weigh as much as one with 300. See docs/report.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Iterable, Sequence

from streams.slo.report.load import COUNT_FIELDS, Loaded, Period

__all__ = ["sl_terms", "GroupReport", "HeatMap", "summarize_group", "worst_intervals",
           "heat_map", "days", "build_report", "NO_REPEAT_CALLERS", "NO_DISPOSITIONS"]

NO_REPEAT_CALLERS = ("some intervals with calls have no first-contact-resolution record "
                     "(slo.queue-fcr.v1, final fcr_window_s after its interval): read the FCR "
                     "topic or file too, wait for the window to pass, or the callers were not "
                     "sent")
NO_DISPOSITIONS = ("some records carry no dispositioned count (written by an engine before it "
                   "had one)")


def sl_terms(record: dict[str, Any]) -> tuple[int, int]:
    """``(good, denominator)`` of a record's service level by its own ``sl_formula``: the
    calls that count as good and the calls the formula divides by (docs/metrics.md).

    ``service_level`` in :mod:`streams.records` is ``good / denominator``; a test checks that
    the two agree for every formula.
    """
    formula = record["sl_formula"]
    within = record["answered_within"]
    if formula == "offered":
        return within, record["offered"]
    if formula == "ignore_abandons":
        return within, record["offered"] - record["abandoned"]
    if formula == "abandons_within_good":
        return within + record["abandoned_within"], record["offered"]
    if formula == "answered":
        return within, record["answered"]
    raise ValueError(f"unknown sl_formula {formula!r}")


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _allowed_bad(record: dict[str, Any], denominator: int) -> float:
    return (1.0 - record["sl_target"]) * denominator


@dataclass
class HeatMap:
    """Service level per (weekday, slot of the day) in the period's zone, from counts:
    ``cells[(weekday, slot)] = (good, denominator)``, Monday = 0, slot = minute of the day of
    the interval start // ``slot_minutes``."""

    slot_minutes: int
    cells: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)

    @property
    def slots_per_day(self) -> int:
        return 24 * 60 // self.slot_minutes

    def service_level(self, weekday: int, slot: int) -> float | None:
        good, denominator = self.cells.get((weekday, slot), (0, 0))
        return _ratio(good, denominator)


@dataclass
class GroupReport:
    """One queue (or a whole tenant, ``queue`` None): its records, the JSON summary and the
    series the charts draw."""

    tenant: str
    queue: str | None
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    #: (interval_end_ms, remaining share of the period's budget) after each interval
    burn_down: list[tuple[int, float]]
    heat_map: HeatMap


def _iso(period: Period, time_ms: int) -> str:
    return period.local(time_ms).isoformat(timespec="minutes")


def summarize_group(records: Sequence[dict[str, Any]], period: Period,
                    worst_n: int = 10) -> tuple[dict[str, Any], list[tuple[int, float]]]:
    """The JSON summary of some records (one queue's, or a tenant's) and its burn-down."""
    totals = {name: sum(r[name] for r in records) for name in COUNT_FIELDS}
    terms = [sl_terms(r) for r in records]
    good = sum(g for g, _ in terms)
    denominator = sum(d for _, d in terms)
    bad = denominator - good
    # Each interval allows (1 - its target) of its own denominator, so a target changed
    # mid-period, or queues with different targets in a tenant, combine correctly.
    # Rounded to 1e-9 calls: the sums of decimal targets carry only float noise below that.
    allowed = round(sum(_allowed_bad(r, d) for r, (_, d) in zip(records, terms)), 9)
    policies = _policies(records)
    target = policies[0]["sl_target"] if len(policies) == 1 else (
        None if denominator == 0 else 1.0 - allowed / denominator)
    sl = _ratio(good, denominator)
    burn_down, exceeded_ms = _burn_down(records, terms, allowed)
    judged = [r for r in records if r["sl_met"] is not None]
    met = sum(1 for r in judged if r["sl_met"])
    answered_timed = [r for r in records if r["asa_s"] is not None]
    summary = {
        "intervals": len(records),
        "first_interval_start": _iso(period, records[0]["interval_start_ms"]) if records else None,
        "last_interval_end": _iso(period, records[-1]["interval_end_ms"]) if records else None,
        "policies": policies,
        "totals": totals,
        "service_level": {
            "value": sl,
            "target": target,
            "met": None if sl is None or target is None else sl >= target,
            "good": good,
            "denominator": denominator,
            "formulas": sorted({r["sl_formula"] for r in records}),
        },
        "timeslices": {
            "intervals_with_service_level": len(judged),
            "intervals_meeting_target": met,
            "share_meeting_target": _ratio(met, len(judged)),
        },
        "error_budget": {
            "denominator": denominator,
            "allowed_bad": allowed,
            "bad": bad,
            "consumed": _ratio(bad, allowed),
            "remaining_bad": round(allowed - bad, 9),
            "exceeded_at": None if exceeded_ms is None else _iso(period, exceeded_ms),
        },
        "abandon_rate": _ratio(totals["abandoned"], totals["offered"]),
        # ASA per interval is over answered calls with a known wait; weighting by `answered`
        # is exact when no wait was unknown, which `asa_exact` says.
        "asa_s": _ratio(sum(r["asa_s"] * r["answered"] for r in answered_timed),
                        sum(r["answered"] for r in answered_timed)),
        "asa_exact": all(r["wait_unknown"] == 0 for r in records),
        "aht_s": _ratio(sum(r["aht_s"] * r["handled"] for r in records if r["aht_s"] is not None),
                        totals["handled"]),
        "max_wait_s": max((r["max_wait_s"] for r in records if r["max_wait_s"] is not None),
                          default=None),
        "quality": {
            "transfer_rate": {"value": _ratio(totals["transferred"], totals["handled"]),
                              "transferred": totals["transferred"], "handled": totals["handled"]},
            "first_contact_resolution": _first_contact_resolution(records),
            "disposition_coverage": _disposition_coverage(records, totals["handled"]),
        },
        "days": days(records, period),
        "worst_intervals": worst_intervals(records, period, worst_n),
    }
    return summary, burn_down


def days(records: Iterable[dict[str, Any]], period: Period) -> list[dict[str, Any]]:
    """The period's figures per day of the period's zone (an interval counts in the day of
    its start), each rate from that day's summed counts: service level, abandon rate and the
    quality objectives, so a day that spoiled the period can be found."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_day[period.local(record["interval_start_ms"]).date().isoformat()].append(record)
    out = []
    for day, day_records in sorted(by_day.items()):
        terms = [sl_terms(r) for r in day_records]
        good = sum(g for g, _ in terms)
        denominator = sum(d for _, d in terms)
        allowed = sum(_allowed_bad(r, d) for r, (_, d) in zip(day_records, terms))
        sl = _ratio(good, denominator)
        target = None if denominator == 0 else round(1.0 - allowed / denominator, 9)
        offered = sum(r["offered"] for r in day_records)
        handled = sum(r["handled"] for r in day_records)
        transferred = sum(r["transferred"] for r in day_records)
        out.append({
            "date": day,
            "intervals": len(day_records),
            "offered": offered,
            "service_level": sl,
            "target": target,
            "met": None if sl is None or target is None else sl >= target,
            "abandon_rate": _ratio(sum(r["abandoned"] for r in day_records), offered),
            "transfer_rate": _ratio(transferred, handled),
            "first_contact_resolution": _first_contact_resolution(day_records)["value"],
            "disposition_coverage": _disposition_coverage(day_records, handled)["value"],
        })
    return out


def _first_contact_resolution(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Share of the period's contacts resolved at the first contact, from counts, and only
    when every interval with calls has its FCR counts (a partial sum would misstate it)."""
    counted = [r for r in records if r["entered"]]
    if any(r.get("resolved_calls") is None for r in counted):
        return {"value": None, "reason": NO_REPEAT_CALLERS}
    resolved = sum(r["resolved_calls"] for r in counted)
    unresolved = sum(r["unresolved_calls"] for r in counted)
    return {"value": _ratio(resolved, resolved + unresolved), "resolved_calls": resolved,
            "unresolved_calls": unresolved}


def _disposition_coverage(records: Sequence[dict[str, Any]], handled: int) -> dict[str, Any]:
    """Share of the period's handled calls whose wrap-up carried a disposition; from counts,
    and only when every record has the count (a partial sum would understate it)."""
    if any(r.get("dispositioned") is None for r in records):
        return {"value": None, "reason": NO_DISPOSITIONS}
    dispositioned = sum(r["dispositioned"] for r in records)
    return {"value": _ratio(dispositioned, handled), "dispositioned": dispositioned,
            "handled": handled}


def _policies(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct (threshold, formula, target) the records were computed with, and how many
    intervals each; more than one means the queue rules changed (or a tenant's queues differ)."""
    seen: dict[tuple[Any, str, Any], int] = defaultdict(int)
    for r in records:
        seen[(r["threshold_s"], r["sl_formula"], r["sl_target"])] += 1
    return [{"threshold_s": t, "sl_formula": f, "sl_target": s, "intervals": n}
            for (t, f, s), n in sorted(seen.items(), key=lambda item: -item[1])]


def _burn_down(records: Sequence[dict[str, Any]], terms: Sequence[tuple[int, int]],
               allowed: float) -> tuple[list[tuple[int, float]], int | None]:
    """Remaining share of the period's budget after each interval (in time order; a tenant's
    queues share interval ends), and the end of the interval where it first went below 0."""
    bad_by_end: dict[int, int] = defaultdict(int)
    for r, (good, denominator) in zip(records, terms):
        bad_by_end[r["interval_end_ms"]] += denominator - good
    points: list[tuple[int, float]] = []
    exceeded_ms = None
    spent = 0
    for end_ms in sorted(bad_by_end):
        spent += bad_by_end[end_ms]
        if allowed > 0:
            points.append((end_ms, 1.0 - spent / allowed))
        if exceeded_ms is None and spent > allowed:
            exceeded_ms = end_ms
    return points, exceeded_ms


def worst_intervals(records: Iterable[dict[str, Any]], period: Period,
                    n: int) -> list[dict[str, Any]]:
    """Up to ``n`` intervals that missed their target, most calls outside the objective first
    (then lower service level, then earlier)."""
    missed = []
    for r in records:
        if r["sl_met"] is False:
            good, denominator = sl_terms(r)
            missed.append((-(denominator - good), r["service_level"], r["interval_start_ms"], r))
    missed.sort(key=lambda item: item[:3])
    return [{"queue": r["queue"], "interval_start": _iso(period, r["interval_start_ms"]),
             "interval_start_ms": r["interval_start_ms"], "service_level": r["service_level"],
             "sl_target": r["sl_target"], "bad": -neg_bad, "offered": r["offered"],
             "abandon_rate": r["abandon_rate"], "asa_s": r["asa_s"]}
            for neg_bad, _, _, r in missed[:n]]


def heat_map(records: Iterable[dict[str, Any]], period: Period) -> HeatMap:
    """Weekday x slot-of-day service level from counts; the slot is the shortest interval."""
    records = list(records)
    slot_minutes = min(((r["interval_end_ms"] - r["interval_start_ms"]) // 60_000
                        for r in records), default=15)
    slot_minutes = max(1, min(slot_minutes, 24 * 60))
    sums: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        local = period.local(r["interval_start_ms"])
        cell = sums[(local.weekday(), (local.hour * 60 + local.minute) // slot_minutes)]
        good, denominator = sl_terms(r)
        cell[0] += good
        cell[1] += denominator
    return HeatMap(slot_minutes, {key: (g, d) for key, (g, d) in sums.items()})


def build_report(loaded: Loaded, period: Period, worst_n: int = 10
                 ) -> tuple[dict[str, Any], list[GroupReport]]:
    """The JSON summary of the whole report, and one :class:`GroupReport` per queue (sorted
    by tenant, queue) for the charts."""
    tenants: dict[str, Any] = {}
    groups: list[GroupReport] = []
    for tenant, tenant_iter in groupby(loaded.records, key=lambda r: r["tenant"]):
        tenant_records = sorted(tenant_iter, key=lambda r: (r["interval_start_ms"], r["queue"]))
        summary, _ = summarize_group(tenant_records, period, worst_n)
        summary["queues"] = {}
        for queue, queue_iter in groupby(sorted(tenant_records, key=lambda r: r["queue"]),
                                         key=lambda r: r["queue"]):
            queue_records = sorted(queue_iter, key=lambda r: r["interval_start_ms"])
            queue_summary, burn_down = summarize_group(queue_records, period, worst_n)
            summary["queues"][queue] = queue_summary
            groups.append(GroupReport(tenant, queue, queue_records, queue_summary, burn_down,
                                      heat_map(queue_records, period)))
        tenants[tenant] = summary
    report = {
        "schema": "callslo.sla-report.v1",
        "period": {"from": period.first_day.isoformat(), "to": period.last_day.isoformat(),
                   "tz": period.tz_name, "start_ms": period.start_ms, "end_ms": period.end_ms},
        "input": dict(sorted(loaded.counts.items())),
        "tenants": tenants,
    }
    return report, groups
