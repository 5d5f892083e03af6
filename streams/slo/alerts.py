"""The alert state machine: limits with hysteresis and a minimum hold time, stable alert ids,
and the ``slo.alerts.v1`` record of each state change.

A rule fires when its value has been past the limit continuously for ``hold_fire_ms`` (time
is the records' own event time), and resolves when the value has been back inside the
hysteresis band (``clear``) continuously for ``hold_resolve_ms``. A value oscillating between
``clear`` and the limit therefore never changes the state, and one crossing both only after a
hold. The id of an alert is a hash of tenant, queue, kind, subject and the start of the
breach: the same episode keeps its id across restarts and redelivery.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterator

__all__ = ["Rule", "AlertMachine", "alert_id", "ALERT_SCHEMA"]

ALERT_SCHEMA = "slo.alerts.v1"


@dataclass(frozen=True)
class Rule:
    """One alert kind for one queue. ``direction`` "above": fires at ``value >= threshold`` and
    clears at ``value < clear``; "below": fires at ``value < threshold``, clears at
    ``value >= clear``. A value of None (nothing to measure) counts as clear."""

    kind: str
    severity: str
    direction: str
    threshold: float
    clear: float
    hold_fire_ms: int
    hold_resolve_ms: int
    subject: str = ""  # the objective a burn alert is about; "" for queue-wide kinds

    def breached(self, value: float | None) -> bool:
        if value is None:
            return False
        return value >= self.threshold if self.direction == "above" else value < self.threshold

    def cleared(self, value: float | None) -> bool:
        if value is None:
            return True
        return value < self.clear if self.direction == "above" else value >= self.clear


def alert_id(tenant: str, queue: str, kind: str, subject: str, started_ms: int) -> str:
    """Stable id of one alert episode."""
    text = f"{tenant}\x1f{queue}\x1f{kind}\x1f{subject}\x1f{started_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class _Track:
    breach_since_ms: int | None = None
    clear_since_ms: int | None = None
    firing: dict[str, Any] | None = None


class AlertMachine:
    """Every rule's state for the queues of one partition."""

    def __init__(self) -> None:
        self._tracks: dict[tuple[str, str, str, str], _Track] = {}

    def observe(self, tenant: str, queue: str, rule: Rule, value: float | None, at_ms: int,
                detail: dict[str, Any] | None = None, quiet: bool = False
                ) -> dict[str, Any] | None:
        """Feed one observation; return the alert record when the state changed.

        ``quiet`` observations (stale data) move the clocks but never fire: a worker catching up
        does not page for the past. They can still resolve a firing alert.
        """
        key = (tenant, queue, rule.kind, rule.subject)
        track = self._tracks.get(key)
        if track is None or track.firing is None:
            if not rule.breached(value) or quiet:
                # Nothing pending: no track kept (most observations of most queues are fine).
                if track is not None:
                    del self._tracks[key]
                return None
            if track is None:
                track = self._tracks[key] = _Track()
            if track.breach_since_ms is None:
                track.breach_since_ms = at_ms
            if at_ms - track.breach_since_ms < rule.hold_fire_ms:
                return None
            started = track.breach_since_ms
            track.firing = {
                "schema": ALERT_SCHEMA,
                "id": alert_id(tenant, queue, rule.kind, rule.subject, started),
                "state": "firing", "severity": rule.severity, "tenant": tenant, "queue": queue,
                "kind": rule.kind, "objective": rule.subject or None, "value": value,
                "threshold": rule.threshold, "started_ms": started, "resolved_ms": None,
                "at_ms": at_ms, "detail": detail or {},
            }
            track.breach_since_ms = None
            track.clear_since_ms = None
            return dict(track.firing)
        if not rule.cleared(value):
            track.clear_since_ms = None
            return None
        if track.clear_since_ms is None:
            track.clear_since_ms = at_ms
        if at_ms - track.clear_since_ms < rule.hold_resolve_ms:
            return None
        resolved = {**track.firing, "state": "resolved", "value": value, "resolved_ms": at_ms,
                    "at_ms": at_ms, "detail": detail or {}}
        track.firing = None
        track.clear_since_ms = None
        return resolved

    def restore(self, record: dict[str, Any]) -> None:
        """Take back an alert read from the alerts topic at start: the latest record of each
        id, in topic order. A firing one is firing again; a resolved one ends its episode."""
        key = (record["tenant"], record["queue"], record["kind"], record.get("objective") or "")
        track = self._tracks.setdefault(key, _Track())
        if record["state"] == "firing":
            track.firing = dict(record)
        elif track.firing is not None and track.firing["id"] == record["id"]:
            track.firing = None

    def firing(self) -> Iterator[dict[str, Any]]:
        """The alerts firing now."""
        for track in self._tracks.values():
            if track.firing is not None:
                yield dict(track.firing)

    def forget(self, tenant: str, queue: str) -> None:
        for key in [k for k in self._tracks if k[:2] == (tenant, queue)]:
            del self._tracks[key]
