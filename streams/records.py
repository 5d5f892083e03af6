"""Output records on the SLO topics, and the metric formulas that fill them.

The formulas are documented in docs/metrics.md; downstream consumers depend on them, so a
change here is a change of the record's version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from kernels import Field, PaneState, pane_quantiles
from streams.settings import QueuePolicy

__all__ = ["IntervalKey", "interval_records", "window_columns", "wait_column", "service_level",
           "QUANTILES"]

#: Wait-time quantiles reported per interval (answered calls), as record field suffixes.
QUANTILES = ((0.50, "p50"), (0.90, "p90"), (0.95, "p95"), (0.99, "p99"))


@dataclass(frozen=True, slots=True)
class IntervalKey:
    """Which interval a pane row holds."""

    tenant: str
    queue: str
    interval_start_ms: int
    policy: QueuePolicy


def service_level(formula: str, answered_within: int, abandoned_within: int, answered: int,
                  abandoned: int, offered: int) -> float | None:
    """The service level by ``formula``; ``None`` when its denominator is 0."""
    if formula == "offered":
        numerator, denominator = answered_within, offered
    elif formula == "ignore_abandons":
        numerator, denominator = answered_within, offered - abandoned
    elif formula == "abandons_within_good":
        numerator, denominator = answered_within + abandoned_within, offered
    elif formula == "answered":
        numerator, denominator = answered_within, answered
    else:
        raise ValueError(f"unknown sl_formula {formula!r}")
    return numerator / denominator if denominator > 0 else None


#: Formula codes of :func:`window_columns`, in the order it computes them.
_FORMULAS = ("offered", "ignore_abandons", "abandons_within_good", "answered")


def _ratio_column(numerator: np.ndarray, denominator: np.ndarray, scale: float = 1.0
                  ) -> list[float | None]:
    """``numerator / denominator / scale`` per row (as the scalar rule divides: float64,
    correctly rounded, then scaled), ``None`` where the denominator is not positive."""
    positive = denominator > 0
    quotient = np.divide(numerator, denominator, out=np.zeros(numerator.size),
                         where=positive) / scale
    return [v if ok else None for v, ok in zip(quotient.tolist(), positive.tolist())]


def window_columns(records: np.ndarray, known_waits: np.ndarray,
                   policies: Sequence[QueuePolicy]) -> dict[str, list[Any]]:
    """The metrics of panes or merged windows, one row each: ``records`` (n, fields) in
    :class:`kernels.Field` order, ``known_waits`` the answered calls with a known wait (the
    sketch's count), ``policies`` each row's queue policy. Returns each metric as a column of
    Python values (record field order); row i is what :func:`service_level` and the rules of
    docs/metrics.md give for row i."""
    r = records
    answered = r[:, Field.ANSWERED]
    abandoned = r[:, Field.ABANDONED]
    dequeued = r[:, Field.DEQUEUED]
    answered_within = r[:, Field.ANSWERED_WITHIN]
    abandoned_within = r[:, Field.ABANDONED_WITHIN]
    handled = r[:, Field.HANDLED]
    offered = answered + abandoned + dequeued
    try:
        formula = np.asarray([_FORMULAS.index(p.sl_formula) for p in policies], dtype=np.int64)
    except ValueError:
        bad = next(p.sl_formula for p in policies if p.sl_formula not in _FORMULAS)
        raise ValueError(f"unknown sl_formula {bad!r}") from None
    numerator = np.where(formula == 2, answered_within + abandoned_within, answered_within)
    denominator = np.choose(formula, [offered, offered - abandoned, offered, answered])
    sl = _ratio_column(numerator, denominator)
    targets = [p.sl_target for p in policies]
    max_wait = r[:, Field.MAX_WAIT_MS]
    return {
        "entered": r[:, Field.ENTERED].tolist(),
        "offered": offered.tolist(),
        "answered": answered.tolist(),
        "abandoned": abandoned.tolist(),
        "short_abandoned": r[:, Field.SHORT_ABANDONED].tolist(),
        "dequeued": dequeued.tolist(),
        "answered_within": answered_within.tolist(),
        "abandoned_within": abandoned_within.tolist(),
        "service_level": sl,
        "sl_met": [None if v is None else v >= t for v, t in zip(sl, targets)],
        "asa_s": _ratio_column(r[:, Field.ANSWERED_WAIT_MS], known_waits, 1000.0),
        "abandon_rate": _ratio_column(abandoned, offered),
        "handled": handled.tolist(),
        "aht_s": _ratio_column(r[:, Field.HANDLE_MS], handled, 1000.0),
        "max_wait_s": [None if v < 0 else v / 1000.0 for v in max_wait.tolist()],
        "transferred": r[:, Field.TRANSFERRED].tolist(),
        "wait_unknown": r[:, Field.WAIT_UNKNOWN].tolist(),
        "abandoned_wait_s": (r[:, Field.ABANDONED_WAIT_MS] / 1000.0).tolist(),
        "dispositioned": r[:, Field.DISPOSITIONED].tolist(),
    }


def wait_column(values: np.ndarray) -> list[float | None]:
    """Wait quantiles in ms (NaN: no answered call with a known wait) as seconds or ``None``."""
    return [None if v != v else v / 1000.0 for v in values.tolist()]


def interval_records(panes: PaneState, rows: Sequence[int], keys: Sequence[IntervalKey],
                     interval_ms: int) -> list[dict[str, Any]]:
    """Final records (schema ``slo.queue-intervals.v1``) for the given pane rows."""
    if not rows:
        return []
    rows_array = np.asarray(rows, dtype=np.int64)
    qs = [q for q, _ in QUANTILES]
    quantiles = pane_quantiles(panes, qs, np.arange(len(rows) + 1, dtype=np.int64), rows_array)
    policies = [key.policy for key in keys]
    starts = [key.interval_start_ms for key in keys]
    columns: dict[str, list[Any]] = {
        "tenant": [key.tenant for key in keys],
        "queue": [key.queue for key in keys],
        "interval_start_ms": starts,
        "interval_end_ms": [start + interval_ms for start in starts],
        "threshold_s": [p.threshold_s for p in policies],
        "sl_formula": [p.sl_formula for p in policies],
        "sl_target": [p.sl_target for p in policies],
    }
    columns.update(window_columns(panes.records[rows_array], panes.sketches.counts[rows_array],
                                  policies))
    for j, (_, name) in enumerate(QUANTILES):
        columns[f"wait_{name}_s"] = wait_column(quantiles[:, j])
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]
