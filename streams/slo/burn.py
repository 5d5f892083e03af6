"""Error-budget arithmetic: compliance windows, burn rates and the multiwindow, multi-burn-rate
alert rules (pure functions; the evaluator feeds them interval terms).

The rules follow the Google SRE workbook, chapter "Alerting on SLOs" (Beyer et al., *The Site
Reliability Workbook*, O'Reilly 2018): for a 30-day window, page when the budget burns 14.4x
over 1 h and 5 min, or 6x over 6 h and 30 min; open a ticket at 1x over 3 days and 6 h. Window
lengths scale with the compliance window (a 7-day window uses 7/30 of each).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from streams.slo.objectives import Objective

__all__ = ["BurnRule", "SRE_RULES", "WindowSum", "scaled_rules", "window_sum", "burn_rate",
           "compliance_span", "compliance_days"]

HOUR_S = 3600
DAY_MS = 86_400_000


@dataclass(frozen=True)
class BurnRule:
    """Fire when both windows burn at ``factor`` times the sustainable rate or more."""

    kind: str
    severity: str
    factor: float
    long_s: float
    short_s: float


#: The workbook's rules for a 30-day compliance window.
SRE_RULES = (
    BurnRule("burn_page_fast", "page", 14.4, 1 * HOUR_S, 5 * 60),
    BurnRule("burn_page_slow", "page", 6.0, 6 * HOUR_S, 30 * 60),
    BurnRule("burn_ticket", "ticket", 1.0, 72 * HOUR_S, 6 * HOUR_S),
)


def scaled_rules(window_days: float, interval_s: int) -> list[BurnRule]:
    """:data:`SRE_RULES` with windows scaled by ``window_days / 30`` and rounded up to whole
    intervals (at least one): interval records are the finest grain the evaluator has, so with
    15-minute intervals the 5-minute window is the last closed interval."""
    scale = window_days / 30.0
    out = []
    for rule in SRE_RULES:
        long_s, short_s = (_whole_intervals(w * scale, interval_s)
                           for w in (rule.long_s, rule.short_s))
        out.append(BurnRule(rule.kind, rule.severity, rule.factor, long_s, short_s))
    return out


def _whole_intervals(seconds: float, interval_s: int) -> float:
    count = max(1, -(-int(round(seconds)) // interval_s))
    return float(count * interval_s)


@dataclass(frozen=True)
class WindowSum:
    """Sums over a window: ``bad`` events, ``allowed`` bad events (Σ (1 − target) × total),
    ``total`` events."""

    bad: float = 0.0
    allowed: float = 0.0
    total: float = 0.0


def window_sum(series: Iterable[tuple[int, float, float, float]], start_ms: int,
               end_ms: int) -> WindowSum:
    """Sum ``(interval_start_ms, bad, total, target)`` rows whose start is in
    ``[start_ms, end_ms)``. Each row allows ``(1 - target) * total`` bad events, so a target
    that changed inside the window weighs each interval by its own target."""
    bad = allowed = total = 0.0
    for start, row_bad, row_total, target in series:
        if start_ms <= start < end_ms:
            bad += row_bad
            total += row_total
            allowed += (1.0 - target) * row_total
    return WindowSum(bad, round(allowed, 9), total)


def burn_rate(window: WindowSum) -> float | None:
    """How fast the window spends budget: ``bad / allowed``. 1.0 spends exactly the budget
    over the compliance window; None when nothing was allowed (no events, or target 1)."""
    return window.bad / window.allowed if window.allowed > 0 else None


def compliance_span(objective: Objective, at_ms: int) -> tuple[int, int]:
    """``[start_ms, end_ms)`` of the compliance window that holds the instant ``at_ms - 1``:
    the last ``window_days`` for a rolling window, or the calendar week (from Monday), month or
    quarter in the objective's time zone."""
    if objective.window == "rolling":
        return at_ms - objective.window_days * DAY_MS, at_ms
    zone = objective.zone
    day = datetime.fromtimestamp((at_ms - 1) / 1000, zone).date()
    if objective.calendar_period == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    elif objective.calendar_period == "month":
        first = day.replace(day=1)
        after = _add_months(first, 1)
    else:
        first = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        after = _add_months(first, 3)
    return _midnight_ms(first, zone), _midnight_ms(after, zone)


def compliance_days(objective: Objective, at_ms: int) -> float:
    """Length of the compliance window at ``at_ms`` in days (calendar months vary)."""
    start, end = compliance_span(objective, at_ms)
    return (end - start) / DAY_MS


def _add_months(first: date, months: int) -> date:
    index = first.month - 1 + months
    return first.replace(year=first.year + index // 12, month=index % 12 + 1, day=1)


def _midnight_ms(day: date, zone: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp() * 1000)


def rule_windows(rule: BurnRule, end_ms: int) -> Sequence[tuple[int, int]]:
    """The long and short windows of ``rule`` ending at ``end_ms``."""
    return ((end_ms - int(rule.long_s * 1000), end_ms), (end_ms - int(rule.short_s * 1000), end_ms))
