"""Intraday profiles, duration distributions and the TOML scenario format."""

from __future__ import annotations

import numpy as np
import pytest

from streams.errors import ConfigError
from streams.simulate.profile import (DurationSpec, Profile, default_profile, default_scenario,
                                      parse_scenario)

MINIMAL = """
[[tenant]]
name = "t"
[[tenant.queue]]
name = "q"
arrivals_per_day = 100
talk = { dist = "exponential", mean_s = 60 }
"""


def test_default_profile_peaks_mid_morning_and_mid_afternoon():
    shares = np.asarray(default_profile().shares)
    assert shares.sum() == pytest.approx(1.0)
    hours = (np.arange(96) + 0.5) / 4
    assert shares[hours < 7].sum() == 0 and shares[hours >= 20].sum() == 0
    morning = hours[np.argmax(np.where(hours < 12.5, shares, 0))]
    afternoon = hours[np.argmax(np.where(hours > 12.5, shares, 0))]
    assert 9.5 <= morning <= 10.5 and 14.0 <= afternoon <= 15.0
    assert shares[np.searchsorted(hours, 12.5)] < shares.max()  # a dip over lunch


def test_hourly_weights_spread_over_quarter_hours():
    profile = Profile.from_weights([0] * 23 + [2])
    assert profile.shares[-4:] == (0.25,) * 4 and sum(profile.shares[:-4]) == 0
    with pytest.raises(ConfigError, match="24 hourly or 96"):
        Profile.from_weights([1, 2, 3])
    with pytest.raises(ConfigError, match="not all 0"):
        Profile.from_weights([0] * 24)


@pytest.mark.parametrize("spec, mean_ms", [
    (DurationSpec("exponential", 100.0), 100_000),
    (DurationSpec("lognormal", 100.0, cv=0.5), 100_000),
    (DurationSpec("fixed", 100.0), 100_000),
    (DurationSpec("exponential", 100.0, share=0.25), 25_000),
])
def test_durations_have_their_mean(spec, mean_ms):
    draws = spec.sample_ms(np.random.default_rng(1), 200_000)
    assert draws.dtype == np.int64 and draws.min() >= 0
    assert draws.mean() == pytest.approx(mean_ms, rel=0.02)


def test_lognormal_has_its_coefficient_of_variation():
    draws = DurationSpec("lognormal", 200.0, cv=0.8).sample_ms(np.random.default_rng(2), 400_000)
    assert draws.std() / draws.mean() == pytest.approx(0.8, rel=0.05)
    assert (DurationSpec().sample_ms(np.random.default_rng(1), 3) == -1).all()


def test_default_scenario_parses():
    scenario = default_scenario()
    assert [t.name for t in scenario.tenants] == ["acme", "globex"]
    acme = scenario.tenants[0]
    assert acme.queues[0].max_wait_s == 900 and acme.queues[0].transfer.to == "billing"
    assert acme.agents[0].shift_s == (7 * 3600, 15 * 3600 + 1800)
    assert acme.agents[0].breaks[1].reason == "lunch" and acme.agents[0].breaks[1].duration_s == 1800


def test_minimal_scenario_takes_defaults():
    queue = parse_scenario(MINIMAL).tenants[0].queues[0]
    assert queue.patience.dist == "none" and queue.max_wait_s is None
    assert queue.profile == default_profile()


@pytest.mark.parametrize("extra, message", [
    ('colour = "red"', r"unknown key\(s\) \['colour'\]"),
    ('max_wait_s = "long"', "max_wait_s must be a number"),
    ('patience = { dist = "weibull", mean_s = 3 }', "patience.dist must be one of"),
    ('hold = { dist = "exponential" }', "hold needs mean_s"),
    ('profile = "weekend"', "profile must be one of"),
    ('transfer = { share = 0.1, to = "nowhere" }', "not a queue of the tenant"),
])
def test_scenario_errors_name_the_key(extra, message):
    with pytest.raises(ConfigError, match=message):
        parse_scenario(MINIMAL + extra + "\n")


@pytest.mark.parametrize("agents, message", [
    ('count = 2\nskills = ["other"]', "not a queue of the tenant"),
    ('count = 2\nskills = ["q"]\nshift = ["17:00", "09:00"]', "must end after it starts"),
    ('count = 2\nskills = ["q"]\nshift = ["7am", "9pm"]', "time of day"),
    ('count = 2\nskills = ["q"]\nbreaks = [{ at = "10:00" }]', "needs minutes"),
])
def test_agent_errors_name_the_key(agents, message):
    with pytest.raises(ConfigError, match=message):
        parse_scenario(MINIMAL + "[[tenant.agents]]\n" + agents + "\n")


def test_not_toml_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_scenario("[[tenant]\n")
