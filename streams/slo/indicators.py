"""SLO indicators of one interval record: good and total events for an objective.

An indicator whose fields a record does not carry (first-contact resolution needs
``resolved_calls``/``unresolved_calls``, joined from the interval's ``slo.queue-fcr.v1``
record, which comes ``fcr_window_s`` after the interval; disposition coverage needs ``dispositioned``, missing from records of older engines)
gives ``None`` with a reason, never a made-up number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from streams.slo.objectives import Objective
from streams.slo.report.summary import sl_terms

__all__ = ["Terms", "NOT_IN_RECORDS", "terms", "objective_target", "quality"]

NOT_IN_RECORDS = "not in these records"


@dataclass(frozen=True)
class Terms:
    """What one interval contributes to an objective: ``good`` out of ``total`` (calls for
    occurrences, 0 or 1 interval for timeslices). ``total`` 0: the interval does not count."""

    good: float
    total: float

    @property
    def bad(self) -> float:
        return self.total - self.good


def _ratio_fields(record: Mapping[str, Any], indicator: str) -> tuple[int, int] | None:
    """(good calls, total calls) of a ratio indicator, or None when the record lacks them."""
    if indicator == "service_level":
        return sl_terms(dict(record))
    if indicator == "abandon_rate":
        return record["offered"] - record["abandoned"], record["offered"]
    if indicator == "transfer_rate":
        return record["handled"] - record["transferred"], record["handled"]
    if indicator == "first_contact_resolution":
        resolved, unresolved = record.get("resolved_calls"), record.get("unresolved_calls")
        if resolved is None or unresolved is None:
            return None
        return resolved, resolved + unresolved
    if indicator == "disposition_coverage":
        dispositioned = record.get("dispositioned")
        if dispositioned is None:
            return None
        return dispositioned, record["handled"]
    raise ValueError(f"indicator {indicator!r} is not a ratio")


def objective_target(objective: Objective, record: Mapping[str, Any]) -> float:
    """The target that applies to a record: the objective's, or the queue's ``sl_target``."""
    if objective.indicator == "service_level" and objective.target == 0.0:
        return float(record["sl_target"])
    return objective.target


def terms(objective: Objective, record: Mapping[str, Any]) -> Terms | None:
    """The record's contribution to ``objective``; None when the record lacks the fields."""
    target = objective_target(objective, record)
    if objective.indicator == "asa":
        asa = record.get("asa_s")
        if asa is None:
            return Terms(0, 0)  # no call answered: the interval is not judged
        return Terms(1 if asa <= objective.threshold_s else 0, 1)
    ratio = _ratio_fields(record, objective.indicator)
    if ratio is None:
        return None
    good, total = ratio
    if objective.budgeting == "occurrences":
        return Terms(good, total)
    if total <= 0:
        return Terms(0, 0)
    slice_target = objective.timeslice_target or target
    return Terms(1 if good / total >= slice_target else 0, 1)


def quality(record: Mapping[str, Any]) -> dict[str, Any]:
    """Quality objectives of one interval: transfer rate, first-contact resolution and
    disposition coverage, each a value or null with a reason."""
    out: dict[str, Any] = {}
    for name, indicator, invert in (("transfer_rate", "transfer_rate", True),
                                    ("first_contact_resolution", "first_contact_resolution", False),
                                    ("disposition_coverage", "disposition_coverage", False)):
        ratio = _ratio_fields(record, indicator)
        if ratio is None:
            out[name] = {"value": None, "reason": NOT_IN_RECORDS}
            continue
        good, total = ratio
        if total <= 0:
            out[name] = {"value": None, "reason": "no calls to measure"}
            continue
        # The transfer rate is the bad share: transferred / handled, not 1 - good / handled.
        value = (total - good) / total if invert else good / total
        out[name] = {"value": value, "reason": None}
    return out
