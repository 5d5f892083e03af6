"""Erlang C and Erlang A staffing for many queue-intervals at once.

Every function broadcasts its arguments like numpy and evaluates each
scenario (queue-interval) in one jitted loop; the formulas and their numerics
are in :mod:`kernels._queueing`. Inputs per scenario:

``arrivals``
    Calls offered in the interval.
``interval_s``, ``aht_s``
    Interval length and average handle time (talk + hold + after-call work), seconds.
    Traffic is ``arrivals * aht_s / interval_s`` Erlangs.
``threshold_s``
    Service-level threshold ``t``.
``patience_s``
    Mean caller patience (Erlang A only; ``inf`` means no abandonment, i.e. Erlang C).

Definitions
-----------
service level
    Erlang C: share of calls answered within ``t``. Erlang A: calls answered
    within ``t`` divided by **all offered calls**; calls that abandon, at any
    time, count against it.
asa_s
    Mean wait of answered calls (Erlang C: all calls are answered).
p_wait
    Probability that a call waits at all (finds every agent busy).
occupancy
    Share of agent time spent handling calls: ``a / n`` (Erlang C),
    ``a (1 - p_abandon) / n`` (Erlang A).
p_abandon
    Probability that a call abandons (Erlang A); NaN for Erlang C, which
    does not model it.

Stability
---------
Erlang C with ``agents <= traffic`` has no steady state: the result reports
``stable = False`` with the limits ``p_wait = 1``, ``service_level = 0``,
``asa_s = inf``, ``occupancy = 1`` instead of raising or returning zeros.
Erlang A is always stable (impatient callers leave).

Required agents
---------------
``raw_agents`` is the fewest agents on the phones that meet the service-level
target with occupancy at most ``max_occupancy``; the reported metrics are
those of ``raw_agents``. ``agents = ceil(raw_agents / (1 - shrinkage))`` is the
positions to schedule (a relative tolerance of 1e-9 absorbs float noise such as
``14 / 0.7 = 20.000000000000004``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _queueing as q
from ._validate import float64_array

__all__ = [
    "MAX_TRAFFIC_ERLANGS",
    "QueueMetrics",
    "StaffingResult",
    "erlang_a",
    "erlang_c",
    "required_agents",
    "required_agents_row",
    "traffic_erlangs",
]

MAX_TRAFFIC_ERLANGS = 1_000_000.0
"""Largest traffic accepted: Erlang B costs one step per agent."""

_SHRINKAGE_TOLERANCE = 1e-9
_MAX_ERLANG_A_TERMS = 5e7  # about a second of summation per scenario


@dataclass(frozen=True)
class QueueMetrics:
    """Metrics of given agent counts; every field has the broadcast shape of the inputs."""

    agents: np.ndarray
    traffic_erlangs: np.ndarray
    p_wait: np.ndarray
    service_level: np.ndarray
    asa_s: np.ndarray
    occupancy: np.ndarray
    p_abandon: np.ndarray
    stable: np.ndarray
    """False where Erlang C has ``agents <= traffic`` (see the module docstring)."""


@dataclass(frozen=True)
class StaffingResult:
    """Required agents and the metrics they achieve; fields have the broadcast shape."""

    agents: np.ndarray
    """Positions to schedule: ``ceil(raw_agents / (1 - shrinkage))``."""
    raw_agents: np.ndarray
    """Agents on the phones meeting the target and the occupancy cap."""
    traffic_erlangs: np.ndarray
    service_level: np.ndarray
    asa_s: np.ndarray
    p_wait: np.ndarray
    occupancy: np.ndarray
    p_abandon: np.ndarray
    """NaN for Erlang C (no abandonment modelled)."""

    def row(self, index: int = 0) -> dict[str, Any]:
        """One scenario as plain Python values (NaN becomes None), e.g. for JSON."""

        def plain(value: Any) -> Any:
            value = value.item()
            return None if isinstance(value, float) and math.isnan(value) else value

        return {
            "agents": plain(self.agents.reshape(-1)[index]),
            "raw_agents": plain(self.raw_agents.reshape(-1)[index]),
            "traffic_erlangs": plain(self.traffic_erlangs.reshape(-1)[index]),
            "service_level": plain(self.service_level.reshape(-1)[index]),
            "asa_s": plain(self.asa_s.reshape(-1)[index]),
            "p_wait": plain(self.p_wait.reshape(-1)[index]),
            "occupancy": plain(self.occupancy.reshape(-1)[index]),
            "p_abandon": plain(self.p_abandon.reshape(-1)[index]),
        }


def _check(name: str, values: np.ndarray, ok: np.ndarray, rule: str) -> None:
    if not np.all(ok):
        bad = values.reshape(-1)[np.flatnonzero(~ok.reshape(-1))[0]]
        raise ValueError(f"{name} must be {rule}, got {bad!r}")


def _inputs(
    arrivals: Any, interval_s: Any, aht_s: Any, threshold_s: Any, **more: Any
) -> tuple[tuple[int, ...], dict[str, np.ndarray]]:
    """Validate, broadcast and flatten the scenario inputs."""
    named = {"arrivals": arrivals, "interval_s": interval_s, "aht_s": aht_s, "threshold_s": threshold_s, **more}
    arrays = {name: float64_array(name, value) for name, value in named.items()}
    try:
        broadcast = np.broadcast_arrays(*arrays.values())
    except ValueError as exc:
        shapes = {name: array.shape for name, array in arrays.items()}
        raise ValueError(f"inputs cannot be broadcast together: {shapes}") from exc
    shape = broadcast[0].shape
    flat = {name: np.ascontiguousarray(array.reshape(-1)) for name, array in zip(arrays, broadcast)}
    for name, positive in (("arrivals", False), ("interval_s", True), ("aht_s", True), ("threshold_s", False)):
        values = flat[name]
        ok = np.isfinite(values) & ((values > 0) if positive else (values >= 0))
        _check(name, values, ok, "finite and > 0" if positive else "finite and >= 0")
    traffic = flat["arrivals"] * flat["aht_s"] / flat["interval_s"]
    limit = f"at most {MAX_TRAFFIC_ERLANGS:g} Erlangs"
    _check("traffic (arrivals * aht_s / interval_s)", traffic, traffic <= MAX_TRAFFIC_ERLANGS, limit)
    flat["traffic"] = traffic
    return shape, flat


def _agents_input(agents: Any) -> np.ndarray:
    array = np.asarray(agents)
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"agents must be whole numbers, got dtype {array.dtype}")
    _check("agents", array, array >= 0, ">= 0")
    return array.astype(np.int64)


def traffic_erlangs(arrivals: Any, interval_s: Any, aht_s: Any) -> np.ndarray:
    """Offered load ``arrivals * aht_s / interval_s`` in Erlangs."""
    _, flat = _inputs(arrivals, interval_s, aht_s, 0.0)
    shape = np.broadcast_shapes(np.shape(arrivals), np.shape(interval_s), np.shape(aht_s))
    return flat["traffic"].reshape(shape)


def erlang_c(agents: Any, arrivals: Any, interval_s: Any, aht_s: Any, threshold_s: Any) -> QueueMetrics:
    """Erlang C (M/M/n) metrics of ``agents`` for every scenario.

    Returns
    -------
    QueueMetrics
        ``p_abandon`` is NaN; ``stable`` is False where ``agents <= traffic``.
    """
    shape, flat = _inputs(arrivals, interval_s, aht_s, threshold_s, agents=_agents_input(agents))
    n = flat["agents"].astype(np.int64)
    out = np.empty((q.N_METRICS, n.size))
    stable = np.empty(n.size, dtype=np.bool_)
    q.erlang_c_many(n, flat["traffic"], flat["aht_s"], flat["threshold_s"], out, stable)
    return _metrics(shape, n, flat["traffic"], out, stable)


def erlang_a(
    agents: Any, arrivals: Any, interval_s: Any, aht_s: Any, patience_s: Any, threshold_s: Any
) -> QueueMetrics:
    """Erlang A (M/M/n+M) metrics of ``agents`` with mean patience ``patience_s``.

    ``patience_s = inf`` gives the Erlang C result for that scenario. ``asa_s``
    is NaN when no call is answered (zero agents).
    """
    shape, flat = _inputs(
        arrivals, interval_s, aht_s, threshold_s, agents=_agents_input(agents), patience_s=patience_s
    )
    patience = flat["patience_s"]
    _check("patience_s", patience, patience > 0, "> 0 seconds (inf for no abandonment)")
    n = flat["agents"].astype(np.int64)
    out = np.empty((q.N_METRICS, n.size))
    stable = np.ones(n.size, dtype=np.bool_)
    lam, mu, theta, patient = _rates(flat)
    impatient = ~patient
    _check_erlang_a_cost(n[impatient], lam[impatient], mu[impatient], theta[impatient])
    if impatient.any():
        part = np.empty((q.N_METRICS, int(impatient.sum())))
        threshold_s = flat["threshold_s"][impatient]
        q.erlang_a_many(n[impatient], lam[impatient], mu[impatient], theta[impatient], threshold_s, part)
        out[:, impatient] = part
    if patient.any():
        part = np.empty((q.N_METRICS, int(patient.sum())))
        part_stable = np.empty(part.shape[1], dtype=np.bool_)
        q.erlang_c_many(
            n[patient],
            flat["traffic"][patient],
            flat["aht_s"][patient],
            flat["threshold_s"][patient],
            part,
            part_stable,
        )
        out[:, patient] = part
        stable[patient] = part_stable
    return _metrics(shape, n, flat["traffic"], out, stable)


def required_agents(
    arrivals: Any,
    interval_s: Any,
    aht_s: Any,
    threshold_s: Any,
    target: Any,
    patience_s: Any = None,
    max_occupancy: Any = 1.0,
    shrinkage: Any = 0.0,
) -> StaffingResult:
    """Agents needed to answer ``target`` of calls within ``threshold_s``.

    Parameters
    ----------
    arrivals, interval_s, aht_s, threshold_s : array_like
        Scenario inputs (see the module docstring).
    target : array_like
        Service-level target, ``0 < target < 1``.
    patience_s : array_like, optional
        Mean patience: Erlang A where finite, Erlang C where ``inf`` or when
        not given.
    max_occupancy : array_like
        Cap on occupancy, ``0 < max_occupancy <= 1``.
    shrinkage : array_like
        Share of paid time off the phones, ``0 <= shrinkage < 1``.

    Returns
    -------
    StaffingResult
        Required positions, raw agents and the metrics of the raw agents.

    Raises
    ------
    TypeError, ValueError
        Non-numeric input or a value outside its range (the message names it).
    """
    patience = np.inf if patience_s is None else patience_s
    shape, flat = _inputs(
        arrivals,
        interval_s,
        aht_s,
        threshold_s,
        target=target,
        patience_s=patience,
        max_occupancy=max_occupancy,
        shrinkage=shrinkage,
    )
    target, patience, cap, shrink = flat["target"], flat["patience_s"], flat["max_occupancy"], flat["shrinkage"]
    _check("target", target, (target > 0) & (target < 1), "a service level with 0 < target < 1")
    _check("patience_s", patience, patience > 0, "> 0 seconds (inf for no abandonment)")
    _check("max_occupancy", cap, (cap > 0) & (cap <= 1), "in (0, 1]")
    _check("shrinkage", shrink, (shrink >= 0) & (shrink < 1), "in [0, 1)")
    size = flat["arrivals"].size
    raw = np.empty(size, dtype=np.int64)
    out = np.empty((q.N_METRICS, size))
    lam, mu, theta, patient = _rates(flat)
    impatient = ~patient
    # The Erlang A search never evaluates fewer than target * a agents.
    lowest = np.floor(target * flat["traffic"])
    _check_erlang_a_cost(lowest[impatient], lam[impatient], mu[impatient], theta[impatient])
    if patient.any():
        raw[patient], out[:, patient] = _solve(
            q.required_erlang_c_many,
            flat["traffic"][patient],
            flat["aht_s"][patient],
            flat["threshold_s"][patient],
            target[patient],
            cap[patient],
        )
    if impatient.any():
        raw[impatient], out[:, impatient] = _solve(
            q.required_erlang_a_many,
            lam[impatient],
            mu[impatient],
            theta[impatient],
            flat["threshold_s"][impatient],
            target[impatient],
            cap[impatient],
        )
    scaled = raw / (1.0 - flat["shrinkage"])
    positions = np.ceil(scaled * (1.0 - _SHRINKAGE_TOLERANCE)).astype(np.int64)
    return StaffingResult(
        agents=positions.reshape(shape),
        raw_agents=raw.reshape(shape),
        traffic_erlangs=flat["traffic"].reshape(shape),
        service_level=out[q.SERVICE_LEVEL].reshape(shape),
        asa_s=out[q.ASA_S].reshape(shape),
        p_wait=out[q.P_WAIT].reshape(shape),
        occupancy=out[q.OCCUPANCY].reshape(shape),
        p_abandon=out[q.P_ABANDON].reshape(shape),
    )


def required_agents_row(
    arrivals: float,
    interval_s: float,
    aht_s: float,
    threshold_s: float,
    target: float,
    patience_s: float | None = None,
    max_occupancy: float = 1.0,
    shrinkage: float = 0.0,
) -> dict[str, Any]:
    """``required_agents(...).row()`` of one scenario given as plain numbers.

    The SLO stage asks for one queue-interval at a time; the array machinery of
    :func:`required_agents` (validation, broadcasting, masks) costs ~180 us per call
    there, the kernels a few. Valid inputs go straight to the kernels; anything else takes
    :func:`required_agents`, which raises the error naming the input.
    """
    patience = math.inf if patience_s is None else patience_s
    values = (arrivals, interval_s, aht_s, threshold_s, target, patience, max_occupancy, shrinkage)
    if all(type(v) in (float, int) for v in values):
        lam_n, interval, aht, threshold, tgt, pat, cap, shrink = (float(v) for v in values)
        traffic = lam_n * aht / interval if interval > 0 else math.inf
        if (math.isfinite(lam_n) and lam_n >= 0 and math.isfinite(interval) and interval > 0
                and math.isfinite(aht) and aht > 0 and math.isfinite(threshold) and threshold >= 0
                and traffic <= MAX_TRAFFIC_ERLANGS and 0 < tgt < 1 and pat > 0
                and 0 < cap <= 1 and 0 <= shrink < 1):
            one = lambda v: np.full(1, v)  # noqa: E731
            raw = np.empty(1, dtype=np.int64)
            out = np.empty((q.N_METRICS, 1))
            if math.isinf(pat):
                q.required_erlang_c_many(one(traffic), one(aht), one(threshold), one(tgt),
                                         one(cap), raw, out)
                cheap = True
            else:
                lam, mu, theta = one(lam_n / interval), one(1.0 / aht), one(1.0 / pat)
                cheap = q.erlang_a_terms(np.floor(one(tgt * traffic)), lam, mu, theta)[0] \
                    <= _MAX_ERLANG_A_TERMS
                if cheap:
                    q.required_erlang_a_many(lam, mu, theta, one(threshold), one(tgt), one(cap),
                                             raw, out)
            if cheap:
                agents = int(math.ceil(raw[0] / (1.0 - shrink) * (1.0 - _SHRINKAGE_TOLERANCE)))

                def plain(value: float) -> float | None:
                    return None if math.isnan(value) else float(value)

                return {"agents": agents, "raw_agents": int(raw[0]), "traffic_erlangs": traffic,
                        "service_level": plain(out[q.SERVICE_LEVEL, 0]),
                        "asa_s": plain(out[q.ASA_S, 0]), "p_wait": plain(out[q.P_WAIT, 0]),
                        "occupancy": plain(out[q.OCCUPANCY, 0]),
                        "p_abandon": plain(out[q.P_ABANDON, 0])}
    return required_agents(arrivals, interval_s, aht_s, threshold_s, target, patience_s,
                           max_occupancy, shrinkage).row()


def _solve(kernel: Any, *columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run a required-agents kernel on contiguous columns; return (raw agents, metrics)."""
    raw = np.empty(columns[0].size, dtype=np.int64)
    out = np.empty((q.N_METRICS, raw.size))
    kernel(*(np.ascontiguousarray(column) for column in columns), raw, out)
    return raw, out


def _check_erlang_a_cost(agents: np.ndarray, lam: np.ndarray, mu: np.ndarray, theta: np.ndarray) -> None:
    terms = q.erlang_a_terms(agents, lam, mu, theta)
    if terms.size and terms.max() > _MAX_ERLANG_A_TERMS:
        i = int(np.argmax(terms))
        raise ValueError(
            f"Erlang A with mean patience {1 / theta[i]:g} s and {agents[i]:g} agents for "
            f"{lam[i] / mu[i]:g} Erlangs would sum ~{terms[i]:.2g} queue states; such patient callers "
            "barely abandon: use patience_s=inf (Erlang C) or more agents"
        )


def _rates(flat: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-second arrival, service and abandonment rates; mask of infinite patience."""
    lam = np.ascontiguousarray(flat["arrivals"] / flat["interval_s"])
    mu = np.ascontiguousarray(1.0 / flat["aht_s"])
    theta = np.ascontiguousarray(1.0 / flat["patience_s"])
    return lam, mu, theta, ~np.isfinite(flat["patience_s"])


def _metrics(
    shape: tuple[int, ...], agents: np.ndarray, traffic: np.ndarray, out: np.ndarray, stable: np.ndarray
) -> QueueMetrics:
    return QueueMetrics(
        agents=agents.reshape(shape),
        traffic_erlangs=traffic.reshape(shape),
        p_wait=out[q.P_WAIT].reshape(shape),
        service_level=out[q.SERVICE_LEVEL].reshape(shape),
        asa_s=out[q.ASA_S].reshape(shape),
        occupancy=out[q.OCCUPANCY].reshape(shape),
        p_abandon=out[q.P_ABANDON].reshape(shape),
        stable=stable.reshape(shape),
    )
