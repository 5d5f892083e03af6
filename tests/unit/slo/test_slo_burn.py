"""Burn-rate arithmetic against hand-computed cases, scaled windows, compliance windows."""

from __future__ import annotations

import pytest

from streams.slo.burn import (SRE_RULES, WindowSum, burn_rate, compliance_days, compliance_span,
                              scaled_rules, window_sum)
from streams.slo.objectives import Objective
from tests.unit.slo.report_records import at_ms

I = 900_000


def test_rules_are_the_workbook_ones_for_thirty_days():
    assert [(r.factor, r.long_s, r.short_s, r.severity) for r in SRE_RULES] == [
        (14.4, 3600, 300, "page"), (6.0, 21600, 1800, "page"), (1.0, 259200, 21600, "ticket")]
    # With 15-minute intervals the 5-minute window becomes one interval.
    assert [(r.long_s, r.short_s) for r in scaled_rules(30, 900)] == [
        (3600, 900), (21600, 1800), (259200, 21600)]


def test_windows_scale_with_the_compliance_window_and_round_up_to_intervals():
    # 7/30 of each: 840 s -> 900, 70 s -> 900, 5040 s -> 5400, 420 s -> 900,
    # 60480 s -> 68 intervals = 61200 s, 5040 s -> 5400.
    assert [(r.long_s, r.short_s) for r in scaled_rules(7, 900)] == [
        (900, 900), (5400, 900), (61200, 5400)]
    assert [(r.long_s, r.short_s) for r in scaled_rules(30, 60)] == [
        (3600, 300), (21600, 1800), (259200, 21600)]


def test_burn_rate_by_hand():
    # Target 99 %: four intervals of 1000 calls, the last with 144 bad ones.
    rows = [(n * I, 144.0 if n == 3 else 0.0, 1000.0, 0.99) for n in range(4)]
    hour = window_sum(rows, 0, 4 * I)
    assert hour == WindowSum(bad=144.0, allowed=40.0, total=4000.0)
    assert burn_rate(hour) == pytest.approx(3.6)
    last = window_sum(rows, 3 * I, 4 * I)
    assert burn_rate(last) == pytest.approx(14.4)
    assert burn_rate(window_sum(rows, 0, 3 * I)) == 0.0
    assert burn_rate(window_sum([], 0, I)) is None


def test_each_interval_allows_by_its_own_target():
    rows = [(0, 10.0, 100.0, 0.8), (I, 5.0, 100.0, 0.9)]
    both = window_sum(rows, 0, 2 * I)
    assert both.allowed == pytest.approx(30.0) and both.bad == 15.0
    assert burn_rate(both) == pytest.approx(0.5)
    # Target 1.0 allows nothing: no burn rate rather than a division by zero.
    assert burn_rate(window_sum([(0, 1.0, 10.0, 1.0)], 0, I)) is None


def test_rolling_and_calendar_compliance_windows():
    end = at_ms("2025-03-15T12:00")
    assert compliance_span(Objective(window_days=7), end) == (end - 7 * 86_400_000, end)
    month = Objective(window="calendar", calendar_period="month", time_zone="Europe/Berlin")
    # March in Berlin: from 1 March 00:00 CET to 1 April 00:00 CEST (a 23-hour day inside).
    assert compliance_span(month, end) == (at_ms("2025-02-28T23:00"), at_ms("2025-03-31T22:00"))
    assert compliance_days(month, end) == pytest.approx(30 + 23 / 24)
    week = Objective(window="calendar", calendar_period="week")
    assert compliance_span(week, end) == (at_ms("2025-03-10T00:00"), at_ms("2025-03-17T00:00"))
    quarter = Objective(window="calendar", calendar_period="quarter")
    assert compliance_span(quarter, at_ms("2025-12-31T23:45")) == (
        at_ms("2025-10-01T00:00"), at_ms("2026-01-01T00:00"))
    # The instant a period ends belongs to the period that ended.
    assert compliance_span(week, at_ms("2025-03-17T00:00"))[0] == at_ms("2025-03-10T00:00")
