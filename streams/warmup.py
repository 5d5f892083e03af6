"""Kernel warm-up: the worker runs every numba kernel once at start, before it consumes.

Numba compiles a kernel on its first call (about half a minute for all of them after an
install or upgrade; well under a second from the on-disk cache afterwards). Without this,
that time fell on the first polls of a fresh worker: the first events after a deploy reached
their records half a minute late, and a benchmark of a fresh install measured the compiler.
The warm-up condenses a small synthetic stream (every event kind, through stage 1's fast
path and its exact decoder), applies it with a :class:`PartitionEngine`, writes and restores
its changelog shards, builds realtime and interval records, judges first-contact resolution
and evaluates the SLOs of the records, all in memory: nothing is sent anywhere.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from streams.contract import Decoder, event_key
from streams.engine import PartitionEngine
from streams.ingest import Condenser
from streams.settings import Settings
from streams.slo.evaluator import SloEvaluator
from streams.slo.fcr import FcrState

__all__ = ["warm_up", "sample_events"]

log = logging.getLogger(__name__)

_CALLS = 40


def sample_events(start_ms: int, calls: int = _CALLS) -> list[dict[str, Any]]:
    """A small stream of every event kind over two intervals of two queues."""
    events: list[dict[str, Any]] = []
    for i in range(calls):
        t = start_ms + i * 45_000
        queue = ("support", "billing")[i % 2]
        base = {"tenant": "warmup", "queue": queue, "call_id": f"w{i}", "v": 1}
        events.append({"event_id": f"w{i}-q", "type": "call.queued", "ts_ms": t,
                       "caller": f"h:{i % 7:04x}", **base})
        kind = i % 5
        if kind == 0:
            events.append({"event_id": f"w{i}-x", "type": "call.abandoned", "ts_ms": t + 2_000,
                           "wait_ms": 2_000, **base})
        elif kind == 1:
            events.append({"event_id": f"w{i}-x", "type": "call.dequeued", "ts_ms": t + 60_000,
                           "reason": "timeout", **base})
        else:
            wait = 5_000 * kind
            agent = f"a{i % 3}"
            answered = {"event_id": f"w{i}-a", "type": "call.answered", "ts_ms": t + wait,
                        "agent_id": agent, **base}
            if kind != 4:
                answered["wait_ms"] = wait  # and without: the wait from the open call
            events.append(answered)
            if kind == 3:
                events.append({"event_id": f"w{i}-t", "type": "call.transferred",
                               "ts_ms": t + wait + 30_000, "agent_id": agent,
                               "target": "billing", **base})
            events.append({"event_id": f"w{i}-e", "type": "call.ended",
                           "ts_ms": t + wait + 90_000, "agent_id": agent, "talk_ms": 80_000,
                           "hold_ms": 10_000, **base})
            events.append({"event_id": f"w{i}-w", "type": "call.wrapup_ended",
                           "ts_ms": t + wait + 120_000, "agent_id": agent, "acw_ms": 30_000,
                           "disposition": "resolved", **base})
        if i % 10 == 0:
            events.append({"event_id": f"w{i}-s", "type": "agent.state", "ts_ms": t,
                           "tenant": "warmup", "v": 1, "agent_id": f"a{i % 3}",
                           "state": ("available", "on_call", "away")[i % 3],
                           "queues": ["support", "billing"]})
    return events


def warm_up(settings: Settings, now_ms: int | None = None) -> float:
    """Call every kernel the worker uses once; returns the seconds it took."""
    started = time.perf_counter()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    interval_ms = settings.engine.interval_ms
    start = (now - 6 * interval_ms) // interval_ms * interval_ms
    events = sample_events(start)
    messages = [(offset, event_key(e).encode(), orjson.dumps(e))
                for offset, e in enumerate(events)]
    messages.append((len(messages), b"warmup/support", b"{not json"))  # the exact decoder
    condenser = Condenser(Decoder.from_settings(settings.ingest, check_key=False), "warmup")
    batch, dead = condenser.condense(0, messages, now)
    if batch is None or len(dead) != 1:
        raise RuntimeError(f"warm-up: the sample stream gave {len(dead)} dead letters "
                           f"({[d.rejection.detail for d in dead]}), expected the one "
                           "malformed line")
    engine = PartitionEngine(0, settings.engine, settings.queues)
    step = engine.apply(batch)
    engine.apply_agent_updates(step.agent_updates)
    engine.mark_batch(0, batch)
    realtime = engine.realtime(now)
    restored = PartitionEngine(0, settings.engine, settings.queues)
    for _, value in engine.all_shard_values():
        restored.load_shard(value)
    restored.remember_ids(0, batch)
    records = step.records + engine.close_all().records
    fcr = FcrState(window_s=settings.slo.fcr_window_s, interval_s=settings.engine.interval_s,
                   source_partitions=1)
    for contact in step.contacts:
        fcr.add(contact)
    fcr.finish()
    evaluator = SloEvaluator(settings.slo, settings.engine.interval_s)
    for snapshot in realtime:
        evaluator.on_realtime(snapshot, now)
    for record in records:
        evaluator.on_interval(record, record["interval_end_ms"])
    seconds = time.perf_counter() - started
    log.info("kernels ready in %.1f s (%d sample events, %d records)", seconds, len(events),
             len(records))
    return seconds
