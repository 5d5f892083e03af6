"""The simulator against queueing theory, measured through the engine.

Stationary single-queue traffic (Poisson arrivals, exponential talk times, no hold, no
wrap-up, agents logged in throughout) is an M/M/n queue: without abandonment its service
level, ASA and probability of waiting are those of Erlang C; with exponential patience, of
Erlang A (M/M/n+M). The events are replayed through the engine (``replay_lines``) and the
per-call figures over the whole run are rebuilt from the interval records; the probability
of waiting, which the records do not carry, comes from the simulator's own events.

Tolerance. Waits of consecutive calls are strongly correlated (a busy spell delays many
calls), so the binomial standard error of ~30 000 calls would be far too optimistic. We use
batch means: the run is cut into ``BATCHES`` consecutive blocks of ``BATCH_HOURS`` hours
(about 1 800 calls, many times the queue's relaxation time at this load, so the block
figures are close to independent); the standard error of the overall figure is the standard
deviation of the block figures over sqrt(BATCHES). The check allows ``Z`` standard errors,
with Z = 4.5: under a Student t with 15 degrees of freedom that misses in about 4 runs in
10 000, and the seed is fixed, so the test is reproducible. Each test also shows it can
fail: the tolerance must be small against the figure, and the theory for one agent fewer
must lie outside it.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import orjson
import pytest

from kernels import erlang_a, erlang_c
from streams.replay import replay_lines
from streams.settings import Settings
from streams.simulate import Simulation, stationary_scenario

pytestmark = pytest.mark.slow

START_MS = 1_740_960_000_000  # 2025-03-03T00:00:00Z
HOUR_MS = 3_600_000
BATCHES = 16
BATCH_HOURS = 10
THRESHOLD_S = 20.0
Z = 4.5

ARRIVALS_PER_HOUR = 180.0
AHT_S = 180.0  # 9 Erlangs
AGENTS = 12


def _run(patience_s: float | None, seed: int):
    """Simulate, replay through the engine; per-batch sums from records and events."""
    simulation = Simulation(stationary_scenario(ARRIVALS_PER_HOUR, AHT_S, AGENTS, patience_s),
                            start_ms=START_MS, duration_ms=BATCHES * BATCH_HOURS * HOUR_MS, seed=seed)
    lines = []
    waited = np.zeros(BATCHES)  # calls that found every agent busy, by outcome time
    for chunk in simulation.run():
        for event in chunk:
            lines.append(orjson.dumps(event))
            kind = event["type"]
            if (kind == "call.answered" and event["wait_ms"] > 0) or kind == "call.abandoned":
                waited[_batch(event["ts_ms"])] += 1
    # Short abandons off: Erlang A counts every abandon against the service level.
    settings = Settings.from_mapping({"queues": {"defaults": {
        "threshold_s": THRESHOLD_S, "short_abandon_s": 0.0, "sl_formula": "offered"}}}, env={})
    result = replay_lines(lines, settings, now_ms=START_MS + 2 * BATCHES * BATCH_HOURS * HOUR_MS)
    assert not result.dead_letters and not result.late
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(BATCHES))
    for record in result.records:
        b = _batch(record["interval_start_ms"])
        for name in ("offered", "answered", "answered_within", "abandoned"):
            sums[name][b] += record[name]
        # asa_s averages the answered calls with a known wait; the simulator always sends it.
        assert record["wait_unknown"] == 0
        sums["wait_s"][b] += (record["asa_s"] or 0.0) * record["answered"]
    sums["waited"] = waited
    return sums


def _batch(ts_ms: int) -> int:
    # Calls finishing after the last arrival count in the last batch.
    return min((ts_ms - START_MS) // (BATCH_HOURS * HOUR_MS), BATCHES - 1)


def _estimate(numerator: np.ndarray, denominator: np.ndarray) -> tuple[float, float]:
    """Overall ratio and its batch-means standard error."""
    overall = numerator.sum() / denominator.sum()
    per_batch = numerator / denominator
    return overall, per_batch.std(ddof=1) / math.sqrt(BATCHES)


def _check(name: str, measured: float, se: float, expected: float, one_agent_fewer: float,
           max_tolerance: float) -> None:
    tolerance = Z * se
    assert tolerance < max_tolerance, f"{name}: tolerance {tolerance:.4f} too wide to mean anything"
    assert abs(measured - expected) <= tolerance, (
        f"{name}: simulated {measured:.4f}, theory {expected:.4f}, tolerance {tolerance:.4f}")
    assert abs(one_agent_fewer - expected) > tolerance, f"{name}: cannot tell {AGENTS - 1} agents"


def test_no_abandonment_matches_erlang_c():
    s = _run(None, seed=11)
    offered = s["offered"].sum()
    assert offered > 25_000 and s["abandoned"].sum() == 0
    theory = erlang_c(AGENTS, ARRIVALS_PER_HOUR, 3600.0, AHT_S, THRESHOLD_S)
    fewer = erlang_c(AGENTS - 1, ARRIVALS_PER_HOUR, 3600.0, AHT_S, THRESHOLD_S)
    _check("service level", *_estimate(s["answered_within"], s["offered"]),
           float(theory.service_level), float(fewer.service_level), 0.05)
    _check("ASA", *_estimate(s["wait_s"], s["answered"]), float(theory.asa_s), float(fewer.asa_s),
           0.5 * float(theory.asa_s))
    _check("P(wait)", *_estimate(s["waited"], s["answered"]), float(theory.p_wait),
           float(fewer.p_wait), 0.06)


def test_exponential_patience_matches_erlang_a():
    patience_s = 180.0
    s = _run(patience_s, seed=12)
    assert s["abandoned"].sum() > 300
    theory = erlang_a(AGENTS, ARRIVALS_PER_HOUR, 3600.0, AHT_S, patience_s, THRESHOLD_S)
    fewer = erlang_a(AGENTS - 1, ARRIVALS_PER_HOUR, 3600.0, AHT_S, patience_s, THRESHOLD_S)
    _check("service level", *_estimate(s["answered_within"], s["offered"]),
           float(theory.service_level), float(fewer.service_level), 0.05)
    _check("ASA", *_estimate(s["wait_s"], s["answered"]), float(theory.asa_s), float(fewer.asa_s),
           0.5 * float(theory.asa_s))
    _check("P(wait)", *_estimate(s["waited"], s["offered"]), float(theory.p_wait),
           float(fewer.p_wait), 0.06)
    _check("abandon rate", *_estimate(s["abandoned"], s["offered"]), float(theory.p_abandon),
           float(fewer.p_abandon), 0.02)
