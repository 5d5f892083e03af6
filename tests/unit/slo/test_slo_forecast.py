"""The seasonal forecast: same interval of the same weekday over past weeks, EWMA fallback."""

from __future__ import annotations

import pytest

from streams.slo.forecast import WEEK_MS, SeasonalForecast
from tests.unit.slo.report_records import at_ms, interval_record

I = 900_000
MONDAY_9 = at_ms("2025-03-03T09:00")


def learn(forecast: SeasonalForecast, start: int, calls: int, aht_s: float = 200.0) -> None:
    forecast.add(interval_record(start, answered=calls, aht_s=aht_s))


def test_seasonal_mean_of_the_same_slot_with_missing_weeks_as_zero():
    forecast = SeasonalForecast(900, weeks=4)
    learn(forecast, MONDAY_9, 40, aht_s=100.0)
    learn(forecast, MONDAY_9 + WEEK_MS, 60, aht_s=200.0)
    # Week 3 has no record at 09:00 (no calls) but the queue was known: it counts as 0.
    learn(forecast, MONDAY_9 + 2 * WEEK_MS + I, 10)
    learn(forecast, MONDAY_9 + 3 * WEEK_MS, 80, aht_s=300.0)
    expected = forecast.expected("acme", "support", MONDAY_9 + 4 * WEEK_MS)
    assert expected.method == "seasonal" and expected.weeks == 4
    assert expected.arrivals == pytest.approx((40 + 60 + 0 + 80) / 4)
    # AHT weighted by handled calls: (40*100 + 60*200 + 80*300) / 180.
    assert expected.aht_s == pytest.approx(40000 / 180)
    # Only the weeks the queue existed: two weeks back from week 3 is week 1.
    early = forecast.expected("acme", "support", MONDAY_9 + 2 * WEEK_MS)
    assert early.weeks == 2 and early.arrivals == pytest.approx(50.0)


def test_ewma_when_no_past_week_is_known():
    forecast = SeasonalForecast(900, weeks=4, alpha=0.5)
    learn(forecast, MONDAY_9, 10)
    learn(forecast, MONDAY_9 + I, 20)   # 0.5*20 + 0.5*10 = 15
    learn(forecast, MONDAY_9 + 3 * I, 40)  # one interval without calls: 15 -> 7.5, then 23.75
    expected = forecast.expected("acme", "support", MONDAY_9 + 4 * I)
    assert expected.method == "ewma" and expected.arrivals == pytest.approx(23.75)
    # Two intervals ahead decays over the one in between.
    assert forecast.expected("acme", "support", MONDAY_9 + 5 * I).arrivals == pytest.approx(11.875)
    assert expected.aht_s == pytest.approx(200.0)


def test_unknown_queue_and_repeats():
    forecast = SeasonalForecast(900)
    assert forecast.expected("acme", "nobody", MONDAY_9).arrivals is None
    learn(forecast, MONDAY_9, 10)
    learn(forecast, MONDAY_9, 99)  # a repeat of a known interval changes nothing
    assert forecast.expected("acme", "support", MONDAY_9 + WEEK_MS).arrivals == 10
