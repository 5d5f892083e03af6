"""Jitted Erlang C (M/M/n) and Erlang A (M/M/n+M) formulas behind ``kernels.erlang``.

Numerics
--------
Both models start from Erlang B computed by the recursion
``B(0) = 1, B(j) = a B(j-1) / (j + a B(j-1))``: no factorials, every step in
(0, 1], stable for any traffic (10 000 Erlangs is 10 000 cheap steps).

Erlang C (no abandonment), with ``a`` Erlangs, ``n > a`` agents, handle time ``h``::

    C = n B / (n - a (1 - B))                 probability of wait
    SL(t) = 1 - C exp(-(n - a) t / h)         answered within t
    ASA = C h / (n - a)                       mean wait of all calls

Erlang A (Palm; Garnett, Mandelbaum and Reiman 2002; Mandelbaum and Zeltyn
2007), arrival rate ``lam``, service rate ``mu``, abandonment rate ``theta``
(1 / mean patience). With ``x = n mu / theta`` and ``y = lam / theta`` the
stationary probabilities above ``n`` are ``pi(n + k) = pi(n) w_k`` with
``w_k = y**k / prod_{i=1..k} (x + i)``, and ``sum_{j<n} pi(j) = pi(n) (1/B - 1)``.
A call that finds ``k`` waiting is at position ``k + 1``; it leaves position
``j`` at rate ``theta (x + j)`` and moves up with probability
``(x + j - 1) / (x + j)``, so it is served with probability ``x / (x + k + 1)``.
Its offered wait ``V`` (time to service if it never gave up) is a sum of
exponentials with rates ``theta (x + i)``, ``i = 0..k``, whence
``1 - exp(-theta V) ~ Beta(k + 1, x)`` and::

    P(served, V <= t) = x / (x + k + 1) * I_p(k + 1, x + 1),  p = 1 - exp(-theta t)
    E[V; served]      = x / (x + k + 1) * sum_{j=1..k+1} 1 / (theta (x + j))

The sums over ``k`` run in log space scaled by their largest term, so they do
not overflow when the queue is overloaded (``lam > n mu`` is allowed: impatient
callers keep it stable), and stop once terms fall below 1e-17 of the peak.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit

# Rows of the metrics matrix the kernels fill (one column per scenario).
P_WAIT = 0
SERVICE_LEVEL = 1
ASA_S = 2
OCCUPANCY = 3
P_ABANDON = 4
N_METRICS = 5

_NEGLIGIBLE = 1e-17


@jit
def erlang_b(n, a):
    """Erlang B blocking probability of ``n`` servers and ``a`` Erlangs."""
    b = 1.0
    for j in range(1, n + 1):
        b = a * b / (j + a * b)
    return b


@jit
def _erlang_c_from_b(n, a, b, aht_s, threshold_s, out, i):
    """Fill column ``i`` of ``out`` for ``n`` agents given ``b = B(n, a)``."""
    if a == 0.0:
        out[P_WAIT, i] = 0.0
        out[SERVICE_LEVEL, i] = 1.0
        out[ASA_S, i] = 0.0
        out[OCCUPANCY, i] = 0.0
        return True
    if n <= a:
        # Unstable: the queue grows without bound. Report the limits, flagged.
        out[P_WAIT, i] = 1.0
        out[SERVICE_LEVEL, i] = 0.0
        out[ASA_S, i] = np.inf
        out[OCCUPANCY, i] = 1.0
        return False
    c = n * b / (n - a * (1.0 - b))
    out[P_WAIT, i] = c
    out[SERVICE_LEVEL, i] = max(0.0, 1.0 - c * math.exp(-(n - a) * threshold_s / aht_s))
    out[ASA_S, i] = c * aht_s / (n - a)
    out[OCCUPANCY, i] = a / n
    return True


@jit
def erlang_c_many(agents, traffic, aht_s, threshold_s, out, stable):
    """Erlang C metrics for every scenario ``i`` (flat arrays)."""
    for i in range(agents.size):
        n = agents[i]
        a = traffic[i]
        b = erlang_b(n, a) if n > a else 1.0
        stable[i] = _erlang_c_from_b(n, a, b, aht_s[i], threshold_s[i], out, i)
        out[P_ABANDON, i] = np.nan


@jit
def required_erlang_c_many(traffic, aht_s, threshold_s, target, max_occupancy, raw_agents, out):
    """Smallest agents meeting ``target`` service level and the occupancy cap (Erlang C)."""
    for i in range(traffic.size):
        a = traffic[i]
        out[P_ABANDON, i] = np.nan
        if a == 0.0:
            raw_agents[i] = 0
            _erlang_c_from_b(0, a, 1.0, aht_s[i], threshold_s[i], out, i)
            continue
        n = np.int64(math.floor(a)) + 1
        b = erlang_b(n, a)
        # Service level rises with n, so the first n that meets it is the answer.
        while True:
            _erlang_c_from_b(n, a, b, aht_s[i], threshold_s[i], out, i)
            if out[SERVICE_LEVEL, i] >= target[i]:
                break
            n += 1
            b = a * b / (n + a * b)
        cap = occupancy_floor(a, max_occupancy[i])
        while n < cap:
            n += 1
            b = a * b / (n + a * b)
        _erlang_c_from_b(n, a, b, aht_s[i], threshold_s[i], out, i)
        raw_agents[i] = n


@jit
def occupancy_floor(a, max_occupancy):
    """Fewest agents whose occupancy ``a / n`` is at most ``max_occupancy``.

    A relative tolerance of 1e-9 keeps float noise (10 / 0.5 = 20.000000000000004)
    from adding an agent.
    """
    return np.int64(math.ceil(a / max_occupancy * (1.0 - 1e-9)))


@jit
def erlang_a_point(n, lam, mu, theta, threshold_s, out, i):
    """Erlang A metrics of ``n`` agents into column ``i`` of ``out`` (rates per second)."""
    a = lam / mu
    if lam == 0.0:
        out[P_WAIT, i] = 0.0
        out[SERVICE_LEVEL, i] = 1.0
        out[ASA_S, i] = 0.0
        out[OCCUPANCY, i] = 0.0
        out[P_ABANDON, i] = 0.0
        return
    if n == 0:
        out[P_WAIT, i] = 1.0
        out[SERVICE_LEVEL, i] = 0.0
        out[ASA_S, i] = np.nan  # nobody is answered
        out[OCCUPANCY, i] = 0.0
        out[P_ABANDON, i] = 1.0
        return
    x = n * mu / theta
    y = lam / theta
    log_y = math.log(y)
    blocking = erlang_b(n, a)
    # Scale the weights w_k by their largest one, at k* = floor(y - x).
    k_peak = np.int64(math.floor(y - x)) if y > x else np.int64(0)
    log_peak = k_peak * log_y - (math.lgamma(x + k_peak + 1.0) - math.lgamma(x + 1.0))
    log_w = -log_peak
    # I_p(k + 1, x + 1) by downward recursion in k; d is the next term to subtract.
    if threshold_s > 0.0:
        log_q = -theta * threshold_s
        log_p = math.log(-math.expm1(log_q))
        incomplete = -math.expm1((x + 1.0) * log_q)
        log_d = math.log(x + 1.0) + log_p + (x + 1.0) * log_q
    else:
        log_p = 0.0
        incomplete = 0.0
        log_d = -np.inf
    total = 0.0  # sum w_k
    queued = 0.0  # sum k w_k
    served_wait = 0.0  # sum w_k E[V; served | k]
    served_in_time = 0.0  # sum w_k P(served, V <= t | k)
    wait_sum = 0.0  # sum_{j=1..k+1} 1 / (theta (x + j))
    k = np.int64(0)
    while True:
        w = math.exp(log_w)
        served = x / (x + k + 1.0)
        wait_sum += 1.0 / (theta * (x + k + 1.0))
        total += w
        queued += k * w
        served_wait += w * served * wait_sum
        served_in_time += w * served * incomplete
        if k >= k_peak and w < _NEGLIGIBLE * total:
            break
        k += 1
        log_w += log_y - math.log(x + k)
        if threshold_s > 0.0:
            incomplete = max(0.0, incomplete - math.exp(log_d))
            log_d += math.log((k + x + 1.0) / (k + 1.0)) + log_p
    p_wait = total * blocking / ((1.0 - blocking) * math.exp(-log_peak) + total * blocking)
    p_abandon = p_wait * queued / (y * total)
    out[P_WAIT, i] = p_wait
    out[P_ABANDON, i] = p_abandon
    out[SERVICE_LEVEL, i] = (1.0 - p_wait) + p_wait * served_in_time / total
    out[ASA_S, i] = p_wait * served_wait / total / (1.0 - p_abandon) if p_abandon < 1.0 else np.nan
    out[OCCUPANCY, i] = a * (1.0 - p_abandon) / n


def erlang_a_terms(agents, lam, mu, theta):
    """Rough count of queue-length terms :func:`erlang_a_point` sums (numpy, vectorised).

    The sum runs to the peak ``(lam - n mu) / theta`` and ~10 standard
    deviations past it; callers use this to refuse inputs that would take
    minutes (very patient callers on a heavily understaffed queue).
    """
    return np.maximum(0.0, (lam - agents * mu) / theta) + 10.0 * np.sqrt(lam / theta) + 100.0


@jit
def erlang_a_many(agents, lam, mu, theta, threshold_s, out):
    """Erlang A metrics for every scenario ``i`` (flat arrays, rates per second)."""
    for i in range(agents.size):
        erlang_a_point(agents[i], lam[i], mu[i], theta[i], threshold_s[i], out, i)


@jit
def required_erlang_a_many(lam, mu, theta, threshold_s, target, max_occupancy, raw_agents, out):
    """Smallest agents meeting ``target`` service level and the occupancy cap (Erlang A).

    With abandonment fewer agents than Erlangs can meet a target, so the search
    starts below the offered load: answered calls cannot outnumber what ``n``
    agents handle, so the service level is at most ``n / a`` and any
    ``n < target * a`` misses. ``hi`` doubles from ``ceil(a)`` until it meets
    the target, then bisection finds the first agent count that does (service
    level rises with agents). Occupancy ``a (1 - P(abandon)) / n`` falls with
    agents and is at most ``a / n``, so the cap is found by bisection below
    ``a / max_occupancy``.
    """
    for i in range(lam.size):
        a = lam[i] / mu[i]
        if lam[i] == 0.0:
            raw_agents[i] = 0
            erlang_a_point(0, lam[i], mu[i], theta[i], threshold_s[i], out, i)
            continue
        high = max(np.int64(1), np.int64(math.ceil(a)))
        while True:
            erlang_a_point(high, lam[i], mu[i], theta[i], threshold_s[i], out, i)
            if out[SERVICE_LEVEL, i] >= target[i]:
                break
            high *= 2
        low = max(np.int64(0), np.int64(math.ceil(target[i] * a)) - 1)  # misses: see above
        while high - low > 1:
            mid = (low + high) // 2
            erlang_a_point(mid, lam[i], mu[i], theta[i], threshold_s[i], out, i)
            if out[SERVICE_LEVEL, i] >= target[i]:
                high = mid
            else:
                low = mid
        n = high
        cap_high = max(n, occupancy_floor(a, max_occupancy[i]))
        cap_low = n - 1  # below n the target is missed anyway
        while cap_high - cap_low > 1:
            mid = (cap_low + cap_high) // 2
            erlang_a_point(mid, lam[i], mu[i], theta[i], threshold_s[i], out, i)
            if out[OCCUPANCY, i] <= max_occupancy[i]:
                cap_high = mid
            else:
                cap_low = mid
        raw_agents[i] = cap_high
        erlang_a_point(cap_high, lam[i], mu[i], theta[i], threshold_s[i], out, i)
