"""Wallboard input records shaped as the topics carry them (slo.queue-realtime.v1 and the
interval, alert and staffing schemas), for the web tests."""

from __future__ import annotations

from typing import Any

T0_MS = 1_741_600_800_000  # 2025-03-10T10:00:00Z


def realtime(tenant: str = "acme", queue: str = "support", *, as_of_ms: int = T0_MS,
             sl: float | None = 0.85, target: float = 0.8, waiting: int = 2,
             oldest_s: float | None = 31.0, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "tenant": tenant, "queue": queue, "as_of_ms": as_of_ms, "emitted_at_ms": as_of_ms + 50,
        "threshold_s": 20.0, "sl_formula": "offered", "sl_target": target,
        "calls_waiting": waiting, "oldest_wait_s": oldest_s if waiting else None,
        "agents": {"available": 3, "on_call": 4, "wrapup": 1, "away": 2}, "staffed": 10}
    for prefix in ("w15m", "w60m"):
        record.update({f"{prefix}_offered": 40, f"{prefix}_answered": 36,
                       f"{prefix}_service_level": sl, f"{prefix}_asa_s": 12.5,
                       f"{prefix}_abandon_rate": 0.1,
                       f"{prefix}_sl_met": None if sl is None else sl >= target})
    record.update(extra)
    return record


def interval(tenant: str = "acme", queue: str = "support", *, start_ms: int,
             sl: float | None = 0.9, target: float = 0.8) -> dict[str, Any]:
    return {"tenant": tenant, "queue": queue, "interval_start_ms": start_ms,
            "interval_end_ms": start_ms + 900_000, "sl_target": target, "service_level": sl,
            "sl_met": None if sl is None else sl >= target, "offered": 30}


def alert(alert_id: str, state: str = "firing", severity: str = "warning", *,
          tenant: str = "acme", queue: str = "support") -> dict[str, Any]:
    return {"id": alert_id, "state": state, "severity": severity, "tenant": tenant,
            "queue": queue, "kind": "service_level", "value": 0.6, "threshold": 0.8,
            "started_ms": T0_MS, "resolved_ms": T0_MS + 60_000 if state == "resolved" else None}


def staffing(start_ms: int, *, erlang_a: int | None = 9, erlang_c: int = 11,
             tenant: str = "acme", queue: str = "support") -> dict[str, Any]:
    return {"tenant": tenant, "queue": queue, "interval_start_ms": start_ms,
            "required_erlang_c": erlang_c, "required_erlang_a": erlang_a, "staffed": 10,
            "gap": 10 - (erlang_a or erlang_c)}
