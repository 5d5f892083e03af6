"""The evaluator fed by hand: every alert kind fires and resolves, budgets and staffing records
agree with hand-computed and report figures."""

from __future__ import annotations

import pytest

from kernels.erlang import required_agents
from streams.settings import Settings
from streams.slo.evaluator import SloEvaluator
from streams.slo.forecast import WEEK_MS
from streams.slo.report.load import Period
from streams.slo.report.summary import summarize_group
from tests.unit.slo.report_records import at_ms, interval_record

I = 900_000
T0 = at_ms("2025-03-03T09:00")


def evaluator(**slo) -> SloEvaluator:
    settings = Settings.from_mapping({"slo": {"alerts": {"hold_s": 30}, **slo}}, env={})
    return SloEvaluator(settings.slo, settings.engine.interval_s)


def snapshot(at: int, **fields) -> dict:
    record = {"tenant": "acme", "queue": "support", "as_of_ms": at, "threshold_s": 20.0,
              "sl_formula": "offered", "sl_target": 0.8, "calls_waiting": 0,
              "oldest_wait_s": None, "staffed": 10, "w15m_offered": 0,
              "w15m_service_level": None, "w15m_entered": 0}
    record.update(fields)
    return record


def alerts_of(outputs) -> list[tuple[str, str]]:
    return [(o.value["kind"], o.value["state"]) for o in outputs if o.role == "alerts"]


def run_realtime(ev: SloEvaluator, points: list[tuple[int, dict]]) -> list[tuple[int, str, str]]:
    out = []
    for at, fields in points:
        out += [(at, kind, state) for kind, state in alerts_of(ev.on_realtime(snapshot(at, **fields), at))]
    return out


@pytest.mark.parametrize("kind, bad, inside_band, good", [
    ("oldest_wait", {"oldest_wait_s": 130.0, "calls_waiting": 1},
     {"oldest_wait_s": 110.0, "calls_waiting": 1}, {"oldest_wait_s": None}),
    ("calls_waiting", {"calls_waiting": 25}, {"calls_waiting": 19}, {"calls_waiting": 3}),
    ("service_level_15m", {"w15m_offered": 40, "w15m_service_level": 0.6},
     {"w15m_offered": 40, "w15m_service_level": 0.81}, {"w15m_offered": 40, "w15m_service_level": 0.9}),
])
def test_realtime_kinds_fire_hold_and_resolve(kind, bad, inside_band, good):
    ev = evaluator()
    changes = run_realtime(ev, [(T0, bad), (T0 + 20_000, bad), (T0 + 30_000, bad),
                                (T0 + 40_000, inside_band), (T0 + 200_000, inside_band),
                                (T0 + 210_000, good), (T0 + 239_999, good),
                                (T0 + 240_000, good)])
    assert [c for c in changes if c[1] == kind] == [(T0 + 30_000, kind, "firing"),
                                                    (T0 + 240_000, kind, "resolved")]


def test_service_level_15m_needs_enough_offered_calls():
    ev = evaluator()
    assert run_realtime(ev, [(T0 + n * 10_000, {"w15m_offered": 5, "w15m_service_level": 0.2})
                             for n in range(10)]) == []


def test_stale_snapshots_raise_no_alert():
    ev = evaluator()
    for n in range(10):
        at = T0 + n * 10_000
        assert ev.on_realtime(snapshot(at, oldest_wait_s=500.0), now_ms=at + 3_600_000) == []


def learn_weeks(ev: SloEvaluator, calls: int, aht_s: float = 180.0) -> None:
    """Four past weeks of the 09:00-10:00 intervals of a Monday."""
    for week in range(4, 0, -1):
        for n in range(4):
            ev.on_interval(interval_record(T0 - week * WEEK_MS + n * I, answered=calls,
                                           aht_s=aht_s), 0, quiet=True)


def test_volume_spike_against_the_same_slot_of_past_weeks():
    ev = evaluator()
    learn_weeks(ev, 20)
    assert ev.expected_last_15m("acme", "support", T0 + 20 * 60_000) == pytest.approx(20.0)
    points = [(T0 + 20 * 60_000 + n * 10_000, {"w15m_entered": 50 if n < 6 else 21})
              for n in range(12)]
    changes = [c for c in run_realtime(ev, points) if c[1] == "volume_spike"]
    assert changes == [(points[3][0], "volume_spike", "firing"),
                       (points[9][0], "volume_spike", "resolved")]


def test_understaffed_against_the_erlang_requirement_of_the_current_interval():
    ev = evaluator()
    learn_weeks(ev, 100, aht_s=200.0)
    need = required_agents(100, 900, 200.0, 20.0, 0.8).row()["agents"]
    points = [(T0 + 60_000 + n * 10_000, {"staffed": need - 2 if n < 5 else need})
              for n in range(10)]
    changes = [c for c in run_realtime(ev, points) if c[1] == "understaffed"]
    assert changes == [(points[3][0], "understaffed", "firing"),
                       (points[8][0], "understaffed", "resolved")]


def test_burn_rate_page_fires_on_both_windows_and_resolves_after_two_clear_intervals():
    ev = evaluator(defaults={"objectives": {"sl": {"target": 0.99}}})
    kinds = []
    sequence = [100] * 8 + [80] * 3 + [100] * 3  # answered within 20 s of 100 offered
    for n, within in enumerate(sequence):
        record = interval_record(T0 + n * I, answered=100, answered_within=within)
        outputs = ev.on_interval(record, now_ms=record["interval_end_ms"] + 60_000)
        kinds += [(n, kind, state) for kind, state in alerts_of(outputs)]
        budget = [o.value for o in outputs if o.role == "budget"][0]
        if n == 10:
            # Hand-computed: allowed 1 bad call per 100; the last hour had 60 bad calls of 4
            # allowed (15x), the last interval 20 of 1 (20x).
            fast = budget["burn_rates"]["burn_page_fast"]
            assert (fast["long"], fast["short"]) == (pytest.approx(15.0), pytest.approx(20.0))
            assert budget["bad"] == 60 and budget["allowed_bad"] == pytest.approx(11.0)
            assert budget["remaining"] == pytest.approx(1 - 60 / 11)
    assert (10, "burn_page_fast", "firing") in kinds
    assert (12, "burn_page_fast", "resolved") in kinds
    assert not [k for k in kinds if k[1] == "burn_page_fast" and k[0] not in (10, 12)]
    assert (8, "burn_ticket", "firing") in kinds


def test_budget_equals_the_reports_figures_over_the_same_records():
    ev = evaluator()
    records = [interval_record(T0 + n * I, answered=50 + n, answered_within=40 + n % 7,
                               abandoned=n % 4, sl_target=0.8 if n < 5 else 0.9)
               for n in range(12)]
    budget = None
    for record in records:
        budget = [o.value for o in ev.on_interval(record, record["interval_end_ms"])
                  if o.role == "budget"][0]
    summary, _ = summarize_group(records, Period.from_options("2025-03-03", "2025-03-03"))
    assert budget["bad"] == summary["error_budget"]["bad"]
    assert budget["allowed_bad"] == pytest.approx(summary["error_budget"]["allowed_bad"])
    assert budget["total"] == summary["service_level"]["denominator"] == sum(
        r["offered"] for r in records)


def test_repeated_interval_records_count_once():
    ev = evaluator()
    record = interval_record(T0, answered=10)
    assert ev.on_interval(record, record["interval_end_ms"])
    assert ev.on_interval(dict(record), record["interval_end_ms"]) == []
    assert ev.duplicates == 1


def test_staffing_record_time_weighted_staffed_and_erlang():
    ev = evaluator()
    for offset_s, staffed in ((0, 10), (300, 20), (600, 0)):
        ev.on_realtime(snapshot(T0 + offset_s * 1000, staffed=staffed), T0)
    record = interval_record(T0, answered=100, abandoned=10, aht_s=200.0, asa_s=30.0,
                             transferred=5)
    outputs = ev.on_interval(record, record["interval_end_ms"])
    closed, following = [o.value for o in outputs if o.role == "staffing"]
    assert closed["kind"] == "closed" and following["kind"] == "next"
    # (10 x 300 s + 20 x 300 s + 0 x 300 s) / 900 s
    assert closed["staffed"] == pytest.approx(10.0) and closed["staffed_coverage"] == 1.0
    assert closed["arrivals"] == 110
    assert closed["required_erlang_c"] == required_agents(110, 900, 200.0, 20.0, 0.8).row()["agents"]
    # Patience: 100 answered x 30 s waited / 10 abandons (abandoned waits not in v1 records).
    assert closed["patience_s"] == pytest.approx(300.0)
    assert "lower bound" in closed["patience_basis"]
    assert closed["required_erlang_a"] == required_agents(
        110, 900, 200.0, 20.0, 0.8, patience_s=300.0).row()["agents"]
    assert closed["required"] == closed["required_erlang_a"]
    assert closed["gap"] == pytest.approx(10.0 - closed["required"])
    assert closed["occupancy"] == pytest.approx(100 * 200.0 / (10.0 * 900))
    quality = closed["quality"]["interval"]
    assert quality["transfer_rate"] == {"value": 0.05, "reason": None}
    assert quality["first_contact_resolution"] == {"value": None, "reason": "not in these records"}
    assert quality["disposition_coverage"]["value"] is None
    # The next interval: EWMA of one interval, staffed now (the last snapshot, 0 agents).
    assert following["interval_start_ms"] == T0 + I and following["forecast_method"] == "ewma"
    assert following["arrivals"] == pytest.approx(110.0) and following["staffed"] == 0.0


def test_partial_coverage_and_quality_when_the_fields_are_there():
    ev = evaluator(defaults={"objectives": {"dispo": {"indicator": "disposition_coverage",
                                                      "target": 0.9}}})
    ev.on_realtime(snapshot(T0 + 450_000, staffed=8), T0)
    record = {**interval_record(T0, answered=20), "resolved_calls": 15, "unresolved_calls": 5,
              "dispositioned": 19}
    outputs = ev.on_interval(record, record["interval_end_ms"])
    closed = [o.value for o in outputs if o.role == "staffing"][0]
    assert closed["staffed"] == 8.0 and closed["staffed_coverage"] == 0.5
    assert closed["quality"]["interval"]["first_contact_resolution"]["value"] == 0.75
    assert closed["quality"]["day"]["disposition_coverage"]["value"] == 0.95
    [budget] = [o.value for o in outputs if o.role == "budget"]
    assert budget["total"] == 20 and budget["bad"] == 1 and budget["allowed_bad"] == pytest.approx(2.0)


def test_an_indicator_missing_from_the_records_is_null_with_a_reason():
    ev = evaluator(defaults={"objectives": {"dispo": {"indicator": "disposition_coverage",
                                                      "target": 0.9}}})
    record = interval_record(T0, answered=20)
    [budget] = [o.value for o in ev.on_interval(record, record["interval_end_ms"])
                if o.role == "budget"]
    assert budget["reason"] == "not in these records"
    assert budget["total"] is None and budget["remaining"] is None


def test_old_interval_records_are_history_without_output():
    ev = evaluator()
    record = interval_record(T0, answered=10)
    assert ev.on_interval(record, now_ms=record["interval_end_ms"] + 2 * 3_600_000) == []
    assert T0 in ev.history[("acme", "support")]


def _fcr_record(start: int, first: int, repeat: int) -> dict:
    return {"schema": "slo.queue-fcr.v1", "tenant": "acme", "queue": "support",
            "interval_start_ms": start, "interval_end_ms": start + I, "fcr_window_s": 86_400,
            "contacts": first + repeat, "resolved_calls": first, "unresolved_calls": repeat,
            "first_contact_resolution": first / (first + repeat)}


def test_fcr_records_join_their_interval_and_update_the_fcr_budget():
    ev = evaluator(defaults={"objectives": {"fcr": {"indicator": "first_contact_resolution",
                                                    "target": 0.7}}})
    record = interval_record(T0, answered=20)
    # The FCR counts come a window later: the interval alone publishes no FCR budget.
    assert [o for o in ev.on_interval(record, record["interval_end_ms"])
            if o.role == "budget"] == []
    [budget] = [o.value for o in ev.on_fcr(_fcr_record(T0, 15, 5), T0 + I + 60_000)]
    assert budget["objective"] == "fcr" and budget["total"] == 20 and budget["bad"] == 5
    assert ev.history[("acme", "support")][T0]["resolved_calls"] == 15
    # An FCR record ahead of its interval record waits for it; an old one publishes nothing.
    assert ev.on_fcr(_fcr_record(T0 + I, 9, 1), T0 + 2 * I) == []
    later = interval_record(T0 + I, answered=10)
    ev.on_interval(later, later["interval_end_ms"])
    assert ev.history[("acme", "support")][T0 + I]["unresolved_calls"] == 1
    assert ev.on_fcr(_fcr_record(T0, 15, 5), T0 + 48 * 3_600_000) == []
