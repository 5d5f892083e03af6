"""A small deterministic generator of contract-v1 call events for tests (not the simulator):
calls over a few queues and tenants, with optional duplicates, bounded disorder and late
events, returned in arrival order."""

from __future__ import annotations

import random
from typing import Any


def call_events(start_ms: int, calls: int, *, queues: int = 3, tenants: tuple[str, ...] = (
        "acme", "globex"), seed: int = 7, duplicates: float = 0.0, disorder_ms: int = 0,
                late: float = 0.0, gap_ms: int = 1500, callers: int | None = None
                ) -> list[dict[str, Any]]:
    """Events of ``calls`` calls arriving every ``gap_ms`` from ``start_ms``, in arrival order.

    ``duplicates``: share of events sent twice (the copy right after a later event).
    ``disorder_ms``: arrival jitter; events may arrive up to this much out of time order.
    ``late``: share of outcomes re-timed one hour back, so they arrive after their interval
    closed (each gets a fresh event id).
    ``callers``: callers drawn from this many (repeat callers across queues and tenants);
    ``None``: from a million, so repeats are rare.
    """
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for i in range(calls):
        tenant = tenants[i % len(tenants)]
        queue = f"q{(i // len(tenants)) % queues}"
        t = start_ms + i * gap_ms
        base = {"tenant": tenant, "queue": queue, "call_id": f"{tenant}-c{i}"}
        events.append({"event_id": f"{tenant}-q{i}", "type": "call.queued", "ts_ms": t, **base,
                       "caller": f"h:{rng.randrange(10**6) % (callers or 10**6):06x}"})
        wait = int(rng.expovariate(1 / 25_000))
        outcome = rng.random()
        if outcome < 0.75:
            known_wait = {"wait_ms": wait} if rng.random() < 0.7 else {}
            events.append({"event_id": f"{tenant}-a{i}", "type": "call.answered",
                           "ts_ms": t + wait, **base, "agent_id": f"ag{i % 5}", **known_wait})
            talk = int(rng.lognormvariate(11.5, 0.5))
            events.append({"event_id": f"{tenant}-e{i}", "type": "call.ended",
                           "ts_ms": t + wait + talk, **base, "agent_id": f"ag{i % 5}",
                           "talk_ms": talk, "hold_ms": rng.choice([0, 0, 5000])})
            events.append({"event_id": f"{tenant}-w{i}", "type": "call.wrapup_ended",
                           "ts_ms": t + wait + talk + 20_000, **base, "agent_id": f"ag{i % 5}",
                           "acw_ms": 20_000, "disposition": "resolved"})
            if rng.random() < 0.05:
                events.append({"event_id": f"{tenant}-t{i}", "type": "call.transferred",
                               "ts_ms": t + wait + talk, **base, "kind": "blind"})
        elif outcome < 0.95:
            events.append({"event_id": f"{tenant}-b{i}", "type": "call.abandoned",
                           "ts_ms": t + wait, **base, "wait_ms": wait})
        else:
            events.append({"event_id": f"{tenant}-d{i}", "type": "call.dequeued",
                           "ts_ms": t + 120_000, **base, "reason": "timeout"})
    arrival = sorted(events, key=lambda e: e["ts_ms"] + (rng.randrange(disorder_ms + 1)
                                                        if disorder_ms else 0))
    out: list[dict[str, Any]] = []
    pending_copies: list[dict[str, Any]] = []
    for event in arrival:
        out.append(event)
        out.extend(pending_copies)
        pending_copies = []
        if duplicates and rng.random() < duplicates:
            pending_copies.append(dict(event))
        if late and event["type"] == "call.abandoned" and rng.random() < late * 5:
            out.append({**event, "event_id": event["event_id"] + "-late",
                        "ts_ms": event["ts_ms"] - 3_600_000})
    out.extend(pending_copies)
    return out
