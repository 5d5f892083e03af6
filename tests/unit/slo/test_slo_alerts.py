"""The alert state machine: firing after the hold, resolving after the hold, hysteresis, ids."""

from __future__ import annotations

from streams.slo.alerts import AlertMachine, Rule, alert_id

ABOVE = Rule("oldest_wait", "page", "above", 60.0, 54.0, hold_fire_ms=30_000,
             hold_resolve_ms=30_000)
BELOW = Rule("service_level_15m", "warning", "below", 0.8, 0.82, 0, 0)


def feed(machine: AlertMachine, rule: Rule, points: list[tuple[int, float | None]]) -> list[dict]:
    out = []
    for at_ms, value in points:
        change = machine.observe("acme", "support", rule, value, at_ms)
        if change is not None:
            out.append(change)
    return out


def test_fires_only_after_the_hold_and_carries_the_breach_start():
    machine = AlertMachine()
    changes = feed(machine, ABOVE, [(0, 10.0), (10_000, 61.0), (20_000, 70.0), (39_999, 80.0)])
    assert changes == []
    [fired] = feed(machine, ABOVE, [(40_000, 90.0)])
    assert fired["state"] == "firing" and fired["kind"] == "oldest_wait"
    assert fired["started_ms"] == 10_000 and fired["resolved_ms"] is None
    assert fired["value"] == 90.0 and fired["threshold"] == 60.0 and fired["severity"] == "page"
    assert fired["id"] == alert_id("acme", "support", "oldest_wait", "", 10_000)
    assert list(machine.firing())[0]["id"] == fired["id"]


def test_a_breach_shorter_than_the_hold_never_fires():
    machine = AlertMachine()
    assert feed(machine, ABOVE, [(0, 61.0), (29_000, 61.0), (30_000, 10.0), (40_000, 61.0),
                                 (69_000, 65.0)]) == []


def test_resolves_after_the_value_stays_inside_the_band_for_the_hold():
    machine = AlertMachine()
    [fired] = feed(machine, ABOVE, [(0, 61.0), (30_000, 61.0)])
    # 55 is below the limit but inside the hysteresis band (54..60): still firing.
    assert feed(machine, ABOVE, [(40_000, 55.0), (100_000, 55.0)]) == []
    assert feed(machine, ABOVE, [(110_000, None), (139_999, 0.0)]) == []
    [resolved] = feed(machine, ABOVE, [(140_000, None)])
    assert resolved["state"] == "resolved" and resolved["id"] == fired["id"]
    assert resolved["started_ms"] == 0 and resolved["resolved_ms"] == 140_000
    assert list(machine.firing()) == []


def test_no_flapping_on_a_value_oscillating_around_the_limit():
    machine = AlertMachine()
    wave = [(n * 10_000, 62.0 if n % 2 else 57.0) for n in range(200)]
    changes = feed(machine, ABOVE, wave)
    assert changes == []  # never 30 s above the limit in a row
    machine = AlertMachine()
    # Once firing, swings between 57 and 62 stay inside the band: one alert, no resolve.
    changes = feed(machine, ABOVE, [(0, 70.0), (30_000, 70.0)] +
                   [(40_000 + n * 10_000, 62.0 if n % 2 else 57.0) for n in range(200)])
    assert [c["state"] for c in changes] == ["firing"]


def test_below_rule_with_hysteresis_and_no_hold():
    machine = AlertMachine()
    changes = feed(machine, BELOW, [(0, 0.85), (1, 0.79), (2, 0.81), (3, 0.80), (4, 0.79),
                                    (5, 0.83)])
    assert [(c["state"], c["at_ms"]) for c in changes] == [("firing", 1), ("resolved", 5)]


def test_a_new_episode_gets_a_new_id_and_restore_brings_firing_back():
    machine = AlertMachine()
    rule = BELOW
    first = feed(machine, rule, [(0, 0.5), (10, 0.9)])
    second = feed(machine, rule, [(20, 0.5)])
    assert first[0]["id"] != second[0]["id"]
    restored = AlertMachine()
    for record in first + second:
        restored.restore(record)
    assert [a["id"] for a in restored.firing()] == [second[0]["id"]]
    # The restored alert resolves like any other, with its id.
    [resolved] = feed(restored, rule, [(30, 0.95)])
    assert resolved["id"] == second[0]["id"] and resolved["state"] == "resolved"


def test_quiet_observations_never_fire_but_can_resolve():
    machine = AlertMachine()
    assert machine.observe("acme", "support", BELOW, 0.1, 0, quiet=True) is None
    assert list(machine.firing()) == []
    machine.observe("acme", "support", BELOW, 0.1, 1)
    assert machine.observe("acme", "support", BELOW, 0.9, 2, quiet=True)["state"] == "resolved"
