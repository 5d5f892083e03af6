"""The report's arithmetic: totals, period service level from counts, error budget,
timeslices, worst intervals, heat map, quality objectives."""

from __future__ import annotations

import itertools
import random

import pytest

from streams.records import service_level
from streams.slo.report.load import COUNT_FIELDS, Collector, Period
from streams.slo.report.progress import Progress
from streams.slo.report.summary import (NO_DISPOSITIONS, NO_REPEAT_CALLERS, build_report,
                                        heat_map, sl_terms)
from tests.unit.slo.report_records import INTERVAL_MS, at_ms, interval_record


def report_of(records, first="2025-03-03", last="2025-03-09", tz="UTC", worst_n=10):
    period = Period.from_options(first, last, tz)
    collector = Collector(period, None, Progress("test", enabled=False))
    for number, record in enumerate(records, start=1):
        collector.add(record, f"record {number}")
    report, groups = build_report(collector.result(), period, worst_n)
    return report, groups, period


def queue_summary(report, tenant="acme", queue="support"):
    return report["tenants"][tenant]["queues"][queue]


def random_records(seed: int, count: int):
    rng = random.Random(seed)
    start = at_ms("2025-03-03T00:00")
    records = []
    for tenant, queue in itertools.product(("acme", "globex"), ("support", "sales", "vip")):
        for i in rng.sample(range(7 * 96), count):
            answered = rng.randint(0, 40)
            records.append(interval_record(
                start + i * INTERVAL_MS, tenant=tenant, queue=queue, answered=answered,
                answered_within=rng.randint(0, answered), abandoned=rng.randint(0, 8),
                abandoned_within=0, dequeued=rng.randint(0, 2),
                short_abandoned=rng.randint(0, 3), transferred=rng.randint(0, 3),
                handled=rng.randint(0, 40), wait_unknown=rng.randint(0, 1),
                sl_formula=rng.choice(["offered", "ignore_abandons", "answered"])))
    return records


def test_totals_equal_the_sums_of_the_interval_counts():
    records = random_records(seed=3, count=150)
    report, groups, _ = report_of(records)
    for tenant, tenant_summary in report["tenants"].items():
        mine = [r for r in records if r["tenant"] == tenant]
        for name in COUNT_FIELDS:
            assert tenant_summary["totals"][name] == sum(r[name] for r in mine), name
            assert tenant_summary["totals"][name] == sum(
                q["totals"][name] for q in tenant_summary["queues"].values())
        for queue, summary in tenant_summary["queues"].items():
            theirs = [r for r in mine if r["queue"] == queue]
            assert summary["intervals"] == len(theirs) == 150
            for name in COUNT_FIELDS:
                assert summary["totals"][name] == sum(r[name] for r in theirs), name
    assert sum(len(g.records) for g in groups) == len(records) == report["input"]["kept"]


@pytest.mark.parametrize("formula", ["offered", "ignore_abandons", "abandons_within_good",
                                     "answered"])
def test_sl_terms_agree_with_the_record_formula(formula):
    for answered, within, abandoned, abandoned_within, dequeued in itertools.product(
            range(4), range(4), range(3), range(3), range(2)):
        if within > answered or abandoned_within > abandoned:
            continue
        record = interval_record("2025-03-03T09:00", answered=answered, answered_within=within,
                                 abandoned=abandoned, abandoned_within=abandoned_within,
                                 dequeued=dequeued, sl_formula=formula)
        good, denominator = sl_terms(record)
        expected = service_level(formula, within, abandoned_within, answered, abandoned,
                                 record["offered"])
        assert (good / denominator if denominator else None) == expected


def test_sl_terms_refuse_an_unknown_formula():
    record = interval_record("2025-03-03T09:00")
    record["sl_formula"] = "mean_of_means"
    with pytest.raises(ValueError, match="mean_of_means"):
        sl_terms(record)


def test_period_service_level_comes_from_counts_not_from_averaged_percentages():
    quiet = interval_record("2025-03-03T07:00", answered=1, answered_within=1, sl_target=0.7)
    busy = interval_record("2025-03-03T10:00", answered=99, answered_within=49, sl_target=0.7)
    report, _, _ = report_of([quiet, busy])
    sl = queue_summary(report)["service_level"]
    averaged = (quiet["service_level"] + busy["service_level"]) / 2
    assert averaged > 0.7  # the mean of the percentages would "meet" the target
    assert (sl["good"], sl["denominator"]) == (50, 100)
    assert sl["value"] == 0.5
    assert sl["met"] is False
    assert sl["target"] == 0.7


def test_error_budget_by_hand():
    # target 0.8: each interval may have 20 % of its offered calls outside the objective.
    records = [interval_record("2025-03-03T09:00", answered=100, answered_within=90),  # bad 10
               interval_record("2025-03-03T09:15", answered=50, answered_within=30),   # bad 20
               interval_record("2025-03-03T09:45", answered=50, answered_within=50)]   # bad 0
    report, groups, _ = report_of(records)
    budget = queue_summary(report)["error_budget"]
    assert budget == {"denominator": 200, "allowed_bad": 40.0, "bad": 30, "consumed": 0.75,
                      "remaining_bad": 10.0, "exceeded_at": None}
    assert groups[0].burn_down == [(at_ms("2025-03-03T09:15"), 0.75),
                                   (at_ms("2025-03-03T09:30"), 0.25),
                                   (at_ms("2025-03-03T10:00"), 0.25)]


def test_error_budget_exceeded_says_when_in_the_report_time_zone():
    records = [interval_record("2025-03-03T09:00", answered=100, answered_within=85),  # bad 15
               interval_record("2025-03-03T09:15", answered=100, answered_within=70),  # bad 30
               interval_record("2025-03-03T09:30", answered=100, answered_within=100)]
    report, groups, _ = report_of(records, tz="Europe/Berlin")
    budget = queue_summary(report)["error_budget"]
    assert budget["allowed_bad"] == 60.0 and budget["bad"] == 45
    assert budget["exceeded_at"] is None
    records.append(interval_record("2025-03-03T09:45", answered=100, answered_within=80))  # 20
    report, groups, _ = report_of(records, tz="Europe/Berlin")
    budget = queue_summary(report)["error_budget"]
    assert (budget["allowed_bad"], budget["bad"]) == (80.0, 65)
    records.append(interval_record("2025-03-03T10:00", answered=10, answered_within=0))  # 10
    records.append(interval_record("2025-03-03T10:15", answered=10, answered_within=0))  # 10
    report, groups, _ = report_of(records, tz="Europe/Berlin")
    budget = queue_summary(report)["error_budget"]
    # allowed 0.2 * 420 = 84; spent 15, 45, 45, 65, 75, 85: over at the end of 10:15 UTC
    assert (budget["allowed_bad"], budget["bad"]) == (84.0, 85)
    assert budget["consumed"] == pytest.approx(85 / 84)
    assert budget["exceeded_at"] == "2025-03-03T11:30+01:00"
    assert groups[0].burn_down[-1][1] == pytest.approx(1 - 85 / 84)


def test_budget_follows_each_interval_target_when_the_rules_change():
    records = [interval_record("2025-03-03T09:00", answered=100, answered_within=85,
                               sl_target=0.8),
               interval_record("2025-03-03T09:15", answered=100, answered_within=85,
                               sl_target=0.9)]
    report, _, _ = report_of(records)
    summary = queue_summary(report)
    assert summary["error_budget"]["allowed_bad"] == 30.0  # 20 + 10
    assert summary["error_budget"]["bad"] == 30
    assert summary["service_level"]["target"] == pytest.approx(0.85)
    assert [p["sl_target"] for p in summary["policies"]] == [0.8, 0.9]


def test_ignore_abandons_budget_uses_its_own_denominator():
    record = interval_record("2025-03-03T09:00", answered=60, answered_within=45, abandoned=40,
                             sl_formula="ignore_abandons")
    report, _, _ = report_of([record])
    summary = queue_summary(report)
    assert summary["service_level"]["denominator"] == 60  # offered 100 - abandoned 40
    assert summary["error_budget"]["allowed_bad"] == 12.0
    assert summary["error_budget"]["bad"] == 15
    assert summary["abandon_rate"] == 0.4


def test_timeslices_count_only_intervals_with_a_service_level():
    records = [interval_record("2025-03-03T09:00", answered=10, answered_within=10),
               interval_record("2025-03-03T09:15", answered=10, answered_within=2),
               interval_record("2025-03-03T09:30", answered=0, handled=3)]  # only call.ended
    report, _, _ = report_of(records)
    assert queue_summary(report)["timeslices"] == {
        "intervals_with_service_level": 2, "intervals_meeting_target": 1,
        "share_meeting_target": 0.5}


def test_worst_intervals_most_bad_calls_first_then_lower_service_level():
    records = [interval_record("2025-03-03T09:00", answered=10, answered_within=7),   # bad 3
               interval_record("2025-03-03T09:15", answered=100, answered_within=70),  # bad 30
               interval_record("2025-03-03T09:30", answered=40, answered_within=10),   # bad 30
               interval_record("2025-03-03T09:45", answered=100, answered_within=95),  # met
               interval_record("2025-03-03T10:00", answered=10, answered_within=7)]    # bad 3
    report, _, _ = report_of(records, worst_n=3)
    worst = queue_summary(report)["worst_intervals"]
    assert [(w["interval_start"], w["bad"]) for w in worst] == [
        ("2025-03-03T09:30+00:00", 30), ("2025-03-03T09:15+00:00", 30),
        ("2025-03-03T09:00+00:00", 3)]
    assert worst[0]["service_level"] == 0.25
    report, _, _ = report_of(records, worst_n=0)
    assert queue_summary(report)["worst_intervals"] == []


def test_rates_and_quality_objectives():
    records = [interval_record("2025-03-03T09:00", answered=10, asa_s=2.0, handled=8,
                               aht_s=100.0, transferred=2, max_wait_s=40.0),
               interval_record("2025-03-03T09:15", answered=30, asa_s=10.0, handled=12,
                               aht_s=200.0, transferred=1, abandoned=10, max_wait_s=90.0)]
    report, _, _ = report_of(records)
    summary = queue_summary(report)
    assert summary["asa_s"] == pytest.approx((10 * 2.0 + 30 * 10.0) / 40)
    assert summary["asa_exact"] is True
    assert summary["aht_s"] == pytest.approx((8 * 100.0 + 12 * 200.0) / 20)
    assert summary["abandon_rate"] == pytest.approx(10 / 50)
    assert summary["max_wait_s"] == 90.0
    quality = summary["quality"]
    assert quality["transfer_rate"] == {"value": 3 / 20, "transferred": 3, "handled": 20}
    assert quality["first_contact_resolution"] == {"value": None, "reason": NO_REPEAT_CALLERS}
    # The test records carry no dispositioned count, as records of an older engine.
    assert quality["disposition_coverage"] == {"value": None, "reason": NO_DISPOSITIONS}


def test_disposition_coverage_is_summed_counts_not_a_mean_of_interval_shares():
    small = interval_record("2025-03-03T09:00", answered=4, handled=4)
    large = interval_record("2025-03-03T09:15", answered=96, handled=96)
    small["dispositioned"], large["dispositioned"] = 0, 96  # shares 0 % and 100 %
    report, _, _ = report_of([small, large])
    assert queue_summary(report)["quality"]["disposition_coverage"] == {
        "value": 0.96, "dispositioned": 96, "handled": 100}
    del small["dispositioned"]  # one record from before the count: no partial sum
    report, _, _ = report_of([small, large])
    assert queue_summary(report)["quality"]["disposition_coverage"] == {
        "value": None, "reason": NO_DISPOSITIONS}


def test_heat_map_sums_counts_per_weekday_and_local_slot():
    # Two Mondays 09:00 Berlin (08:00 UTC in winter) and a Tuesday; Berlin is UTC+1 in March.
    records = [interval_record("2025-03-03T08:00", answered=10, answered_within=10),
               interval_record("2025-03-10T08:00", answered=30, answered_within=10),
               interval_record("2025-03-04T23:30", answered=4, answered_within=1)]
    period = Period.from_options("2025-03-03", "2025-03-16", "Europe/Berlin")
    heat = heat_map(records, period)
    assert heat.slot_minutes == 15 and heat.slots_per_day == 96
    assert heat.cells == {(0, 36): (20, 40), (2, 2): (1, 4)}  # Tue 23:30 UTC is Wed 00:30
    assert heat.service_level(0, 36) == 0.5
    assert heat.service_level(1, 36) is None


def test_first_contact_resolution_is_summed_counts_and_needs_every_interval():
    small = interval_record("2025-03-03T09:00", answered=4)
    large = interval_record("2025-03-03T09:15", answered=96)
    small.update(resolved_calls=0, unresolved_calls=4)
    large.update(resolved_calls=90, unresolved_calls=6)
    report, _, _ = report_of([small, large])
    assert queue_summary(report)["quality"]["first_contact_resolution"] == {
        "value": 0.9, "resolved_calls": 90, "unresolved_calls": 10}
    del small["resolved_calls"], small["unresolved_calls"]  # an interval without its FCR record
    report, _, _ = report_of([small, large])
    assert queue_summary(report)["quality"]["first_contact_resolution"] == {
        "value": None, "reason": NO_REPEAT_CALLERS}


def test_days_split_the_period_by_local_day_with_rates_from_that_days_counts():
    # Berlin is UTC+1 in March: 23:30 UTC on the 3rd is 00:30 on the 4th there.
    records = [interval_record("2025-03-03T09:00", answered=10, answered_within=9, handled=10,
                               transferred=1),
               interval_record("2025-03-03T10:00", answered=30, answered_within=15, abandoned=10,
                               handled=30, transferred=2),
               interval_record("2025-03-03T23:30", answered=4, answered_within=4, handled=4)]
    for record, (first, repeat, dispositioned) in zip(records, ((8, 2, 10), (25, 5, 27),
                                                                (4, 0, 1))):
        record.update(resolved_calls=first, unresolved_calls=repeat, dispositioned=dispositioned)
    report, groups, _ = report_of(records, tz="Europe/Berlin")
    monday, tuesday = queue_summary(report)["days"]
    assert monday == {"date": "2025-03-03", "intervals": 2, "offered": 50,
                      "service_level": 24 / 50, "target": 0.8, "met": False,
                      "abandon_rate": 10 / 50, "transfer_rate": 3 / 40,
                      "first_contact_resolution": 33 / 40, "disposition_coverage": 37 / 40}
    assert tuesday == {"date": "2025-03-04", "intervals": 1, "offered": 4, "service_level": 1.0,
                       "target": 0.8, "met": True, "abandon_rate": 0.0, "transfer_rate": 0.0,
                       "first_contact_resolution": 1.0, "disposition_coverage": 0.25}
    # The tenant's days are the same sums over its queues; here it has one.
    assert report["tenants"]["acme"]["days"] == [monday, tuesday]
    # A day is only judged on figures every one of its intervals carries.
    del records[1]["resolved_calls"], records[1]["dispositioned"]
    report, _, _ = report_of(records, tz="Europe/Berlin")
    monday = queue_summary(report)["days"][0]
    assert monday["first_contact_resolution"] is None
    assert monday["disposition_coverage"] is None


def test_days_sum_to_the_period_counts():
    records = random_records(seed=5, count=200)
    report, _, _ = report_of(records)
    for tenant_summary in report["tenants"].values():
        for summary in (tenant_summary, *tenant_summary["queues"].values()):
            assert sum(d["offered"] for d in summary["days"]) == summary["totals"]["offered"]
            assert sum(d["intervals"] for d in summary["days"]) == summary["intervals"]
            assert [d["date"] for d in summary["days"]] == sorted(d["date"] for d in summary["days"])
