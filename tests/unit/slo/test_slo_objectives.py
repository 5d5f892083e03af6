"""SLO definitions from the settings file: resolution per queue and clear errors."""

from __future__ import annotations

import pytest

from streams.errors import ConfigError
from streams.settings import Settings


def slo(table: dict) -> Settings:
    return Settings.from_mapping({"slo": table}, env={})


def test_default_is_the_queues_service_level_over_thirty_days():
    [(name, objective)] = Settings.from_mapping({}, env={}).slo.objectives("a", "b").items()
    assert name == "service_level" and objective.indicator == "service_level"
    assert objective.target == 0.0 and objective.window_days == 30
    assert objective.budgeting == "occurrences"


def test_levels_merge_objectives_key_by_key():
    settings = slo({
        "defaults": {"objectives": {"sl": {"target": 0.8},
                                    "abandons": {"indicator": "abandon_rate", "target": 0.95}}},
        "tenants": {"globex": {"objectives": {"sl": {"window": "calendar",
                                                     "time_zone": "Europe/Berlin"}}}},
        "overrides": {"globex/vip": {"objectives": {"sl": {"target": 0.9},
                                                     "asa": {"indicator": "asa", "target": 0.9,
                                                             "threshold_s": 15,
                                                             "budgeting": "timeslices"}}}},
    }).slo
    assert sorted(settings.objectives("acme", "x")) == ["abandons", "sl"]
    globex = settings.objectives("globex", "x")["sl"]
    assert (globex.target, globex.window, globex.time_zone) == (0.8, "calendar", "Europe/Berlin")
    vip = settings.objectives("globex", "vip")
    assert vip["sl"].target == 0.9 and vip["sl"].window == "calendar"
    assert vip["asa"].threshold_s == 15 and "abandons" in vip


@pytest.mark.parametrize("table, message", [
    ({"defaults": {"objectives": {"x": {"indicator": "latency"}}}},
     "slo.defaults.objectives.x.indicator must be one of"),
    ({"defaults": {"objectives": {"x": {"indicator": "abandon_rate"}}}},
     "slo.defaults.objectives.x.target is required"),
    ({"defaults": {"objectives": {"x": {"target": 1.5}}}}, "slo.defaults.objectives.x.target"),
    ({"defaults": {"objectives": {"x": {"indicator": "asa", "target": 0.9, "threshold_s": 10}}}},
     'budgeting must be "timeslices"'),
    ({"defaults": {"objectives": {"x": {"threshold_s": 10}}}}, "applies to indicator \"asa\""),
    ({"defaults": {"objectives": {"x": {"time_zone": "Mars/Base"}}}}, "x.time_zone"),
    ({"defaults": {"objectives": {"x": {"window_days": "30"}}}},
     "slo.defaults.objectives.x.window_days must be int"),
    ({"defaults": {"objectives": {"x": {"windw": "rolling"}}}}, "unknown key(s) ['windw']"),
    ({"tenants": {"acme": {"objectives": {"x": {"budgeting": "calls"}}}}},
     "slo.tenants.acme.objectives.x.budgeting"),
    ({"overrides": {"acme-support": {}}}, '"<tenant>/<queue>"'),
    ({"alerts": {"oldest_wait_s": 0}}, "slo.alerts.oldest_wait_s must be > 0"),
    ({"alerts": {"volume_spike_ratio": 0.5}}, "slo.alerts.volume_spike_ratio"),
    ({"alerts": {"hold": 5}}, "unknown key(s) ['hold'] in [slo.alerts]"),
    ({"fcr_window_s": 10}, "slo.fcr_window_s"),
    ({"forecast": 4}, "unknown key(s) ['forecast'] in [slo]"),
])
def test_clear_errors_name_the_key(table, message):
    with pytest.raises(ConfigError) as caught:
        slo(table)
    assert message in str(caught.value)
