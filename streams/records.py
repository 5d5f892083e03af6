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

__all__ = ["IntervalKey", "interval_records", "window_fields", "service_level", "QUANTILES"]

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


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return numerator / denominator / scale if denominator > 0 else None


def window_fields(record: Sequence[int], known_waits: int, policy: QueuePolicy
                  ) -> dict[str, Any]:
    """The metrics of one pane or merged window: ``record`` in :class:`kernels.Field` order,
    ``known_waits`` the answered calls with a known wait (the sketch's count)."""
    answered = record[Field.ANSWERED]
    abandoned = record[Field.ABANDONED]
    dequeued = record[Field.DEQUEUED]
    answered_within = record[Field.ANSWERED_WITHIN]
    abandoned_within = record[Field.ABANDONED_WITHIN]
    handled = record[Field.HANDLED]
    offered = answered + abandoned + dequeued
    sl = service_level(policy.sl_formula, answered_within, abandoned_within, answered,
                       abandoned, offered)
    max_wait_ms = record[Field.MAX_WAIT_MS]
    return {
        "entered": record[Field.ENTERED],
        "offered": offered,
        "answered": answered,
        "abandoned": abandoned,
        "short_abandoned": record[Field.SHORT_ABANDONED],
        "dequeued": dequeued,
        "answered_within": answered_within,
        "abandoned_within": abandoned_within,
        "service_level": sl,
        "sl_met": None if sl is None else sl >= policy.sl_target,
        "asa_s": _ratio(record[Field.ANSWERED_WAIT_MS], known_waits, 1000.0),
        "abandon_rate": _ratio(abandoned, offered),
        "handled": handled,
        "aht_s": _ratio(record[Field.HANDLE_MS], handled, 1000.0),
        "max_wait_s": None if max_wait_ms < 0 else max_wait_ms / 1000.0,
        "transferred": record[Field.TRANSFERRED],
        "wait_unknown": record[Field.WAIT_UNKNOWN],
        "abandoned_wait_s": record[Field.ABANDONED_WAIT_MS] / 1000.0,
        "dispositioned": record[Field.DISPOSITIONED],
    }


def interval_records(panes: PaneState, rows: Sequence[int], keys: Sequence[IntervalKey],
                     interval_ms: int) -> list[dict[str, Any]]:
    """Final records (schema ``slo.queue-intervals.v1``) for the given pane rows."""
    if not rows:
        return []
    rows_array = np.asarray(rows, dtype=np.int64)
    records = panes.records[rows_array].tolist()
    known_waits = panes.sketches.counts[rows_array].tolist()
    qs = [q for q, _ in QUANTILES]
    quantiles = pane_quantiles(panes, qs, np.arange(len(rows) + 1, dtype=np.int64), rows_array)
    out = []
    for record, known, wait_q, key in zip(records, known_waits, quantiles.tolist(), keys):
        item: dict[str, Any] = {
            "tenant": key.tenant,
            "queue": key.queue,
            "interval_start_ms": key.interval_start_ms,
            "interval_end_ms": key.interval_start_ms + interval_ms,
            "threshold_s": key.policy.threshold_s,
            "sl_formula": key.policy.sl_formula,
            "sl_target": key.policy.sl_target,
        }
        item.update(window_fields(record, known, key.policy))
        for value, (_, name) in zip(wait_q, QUANTILES):
            item[f"wait_{name}_s"] = None if value != value else value / 1000.0
        out.append(item)
    return out
