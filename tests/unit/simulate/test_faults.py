"""Fault injection: rates, kinds (each malformed kind gets its own dead-letter reason), the
disorder bound, late delivery, and a stream left untouched when no fault is asked for."""

from __future__ import annotations

import math
from collections import Counter

import orjson
import pytest

from streams.contract import Decoder
from streams.errors import ConfigError
from streams.simulate import Simulation, stationary_scenario
from streams.simulate.faults import MALFORMED_KINDS, FaultInjector, FaultSpec, RawLine

START_MS = 1_740_960_000_000
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def events():
    simulation = Simulation(stationary_scenario(1200, 120, 45), start_ms=START_MS,
                            duration_ms=4 * HOUR_MS, seed=3)
    return [e for chunk in simulation.run() for e in chunk]


def inject(events, spec, seed=1):
    injector = FaultInjector(spec, seed)
    chunks = [events[i:i + 1000] for i in range(0, len(events), 1000)]
    return [item for chunk in injector.apply(chunks) for item in chunk], injector.counts


def within(count, n, p, sigmas=5.0):
    """``count`` is a plausible Binomial(n, p) draw."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_no_fault_passes_the_stream_through(events):
    out, counts = inject(events, FaultSpec())
    assert out == events and not counts


def test_duplicates_repeat_whole_events_at_the_rate(events):
    out, counts = inject(events, FaultSpec(duplicates=0.05))
    assert len(out) == len(events) + counts["duplicates"]
    assert within(counts["duplicates"], len(events), 0.05)
    ids = Counter(e["event_id"] for e in out)
    assert sum(n - 1 for n in ids.values()) == counts["duplicates"]
    assert set(ids) == {e["event_id"] for e in events}


def test_disorder_is_bounded(events):
    out, _ = inject(events, FaultSpec(disorder_ms=3000))
    assert sorted(map(orjson.dumps, out)) == sorted(map(orjson.dumps, events))
    stamps = [e["ts_ms"] for e in out]
    assert stamps != sorted(stamps)
    latest = stamps[0]
    for ts in stamps:
        assert ts >= latest - 3000
        latest = max(latest, ts)


def test_late_events_arrive_a_delay_after_their_time(events):
    out, counts = inject(events, FaultSpec(late=0.01, late_delay_ms=1_800_000))
    assert within(counts["late"], len(events), 0.01)
    assert len(out) == len(events)
    latest, lateness = out[0]["ts_ms"], []
    for e in out:
        if e["ts_ms"] < latest - 600_000:
            lateness.append((latest - e["ts_ms"], e["ts_ms"]))
        latest = max(latest, e["ts_ms"])
    # Released just before the first event past its delivery time, so at most one gap of the
    # stream early; late events due after the last event are flushed at the end, less late.
    gap_ms = max(b["ts_ms"] - a["ts_ms"] for a, b in zip(events, events[1:]))
    end_ms = events[-1]["ts_ms"]
    assert all(ms >= 1_800_000 - gap_ms or ts > end_ms - 1_800_000 for ms, ts in lateness)
    assert counts["late"] - 20 <= len(lateness) <= counts["late"]


def test_malformed_lines_have_several_kinds_each_with_its_reason(events):
    out, counts = inject(events, FaultSpec(malformed=0.02))
    bad = [item for item in out if type(item) is RawLine]
    assert len(bad) == counts["malformed"] and within(len(bad), len(events), 0.02)
    assert [e for e in out if type(e) is dict] == events
    decoder = Decoder(max_message_bytes=1 << 20, max_future_skew_ms=300_000,
                      max_age_ms=3660 * 86_400_000)
    reasons = Counter()
    for line in bad:
        rejection = decoder.decode(line.value, line.key.encode(), START_MS + 10 * HOUR_MS)
        assert type(rejection) is not dict, line
        assert rejection.reason == MALFORMED_KINDS[line.kind]
        reasons[rejection.reason] += 1
    assert set(reasons) == set(MALFORMED_KINDS.values())


def test_faults_are_reproducible_and_do_not_change_the_calls(events):
    spec = FaultSpec(duplicates=0.02, disorder_ms=2000, malformed=0.01, late=0.005)
    first, _ = inject(events, spec, seed=4)
    again, _ = inject(events, spec, seed=4)
    other, _ = inject(events, spec, seed=5)
    encode = lambda items: [orjson.dumps(i) if type(i) is dict else i.value for i in items]  # noqa: E731
    assert encode(first) == encode(again) != encode(other)


@pytest.mark.parametrize("spec", [dict(duplicates=1.5), dict(malformed=-0.1), dict(late=2.0),
                                  dict(disorder_ms=-1), dict(late=0.1, late_delay_ms=0)])
def test_bad_rates_are_refused(spec):
    with pytest.raises(ConfigError):
        FaultSpec(**spec)
