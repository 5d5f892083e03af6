"""The discrete-event model of a contact center (M(t)/G/n+G): calls, queues and the event
loop of a run, which emits contract-v1 events.

Per queue, calls arrive as a Poisson process whose rate is constant within each 15-minute
slot of the intraday profile; every call draws its talk, hold and wrap-up times and its
patience when it arrives. Calls wait first-come-first-served per queue; a free agent takes
the longest-waiting call among its skills (ties: the skill listed first), and a call that
finds several free agents goes to the one idle longest. A waiting call leaves when its
patience runs out (``call.abandoned``), when the queue's maximum wait runs out
(``call.dequeued``, reason ``timeout``) or when the last agent serving the queue logs out
(``call.dequeued``, reason ``empty``). The agents (shifts, breaks, states, idle pools) are
:mod:`streams.simulate.agents`; this module is the :class:`~streams.simulate.agents.Floor`
they work on.

Events are produced in event-time order (ties in a fixed order), as lists of event dicts, and
the same seed always gives the same events. Hot-path notes: random draws come in numpy
blocks of :data:`DRAW_BLOCK` calls, arrivals of all queues are merged once up front, and the
event heap holds only timers (call ends, patience, shifts), never arrivals.
"""

from __future__ import annotations

import heapq
from heapq import heappush
from collections import deque
from typing import Any, Iterator

import numpy as np

from streams.simulate.agents import TIMER_KINDS, Agent, IdleAgents, Workforce
from streams.simulate.profile import DAY_MS, SLOT_MS, QueueSpec, Scenario, TenantSpec

__all__ = ["Simulation", "SOURCE", "DRAW_BLOCK"]

SOURCE = "callslo-simulate"
DRAW_BLOCK = 4096
DISPOSITIONS = ("resolved", "resolved", "resolved", "follow_up", "escalated")

# Timer kinds, in the heap as (ts_ms, sequence, kind, subject, detail): the agents' own
# (shifts, breaks) are 0 .. TIMER_KINDS - 1, the model's follow.
_TALK_END, _WRAPUP_END, _GIVE_UP, _MAX_WAIT, _RUN_END = range(TIMER_KINDS, TIMER_KINDS + 5)
# Call states.
_WAITING, _ANSWERED, _LEFT = range(3)


class _Tenant:
    __slots__ = ("name", "repeat_share", "callers", "calls")

    def __init__(self, spec: TenantSpec) -> None:
        self.name = spec.name
        self.repeat_share = spec.repeat_caller_share
        self.callers: list[str] = []
        self.calls = 0


class _Queue:
    __slots__ = ("name", "tenant", "spec", "rng", "draws", "next_draw", "waiting", "waiting_n",
                 "idle", "staffed", "max_wait_ms", "transfer_to", "transfer_kind", "target")

    def __init__(self, spec: QueueSpec, tenant: _Tenant, rng: np.random.Generator) -> None:
        self.name = spec.name
        self.tenant = tenant
        self.spec = spec
        self.rng = rng
        self.draws: list[tuple] = []
        self.next_draw = 0
        self.waiting: deque[_Call] = deque()  # may hold calls that already left (skipped lazily)
        self.waiting_n = 0
        self.idle = IdleAgents()
        self.staffed = 0  # agents logged in with this skill
        self.max_wait_ms = -1 if spec.max_wait_s is None else round(spec.max_wait_s * 1000)
        transfer = spec.transfer
        self.transfer_kind = transfer.kind if transfer.share > 0 else None
        self.transfer_to = transfer.to
        self.target: _Queue | None = None

    def draw(self) -> tuple:
        """The next call's (talk, hold, wrap-up, patience (-1 = none), transfer, repeat caller,
        caller pick, new caller key, disposition)."""
        if self.next_draw == len(self.draws):
            self.draws = self._block(DRAW_BLOCK)
            self.next_draw = 0
        self.next_draw += 1
        return self.draws[self.next_draw - 1]

    def _block(self, n: int) -> list[tuple]:
        spec, rng = self.spec, self.rng
        columns = (
            np.maximum(spec.talk.sample_ms(rng, n), 0),
            np.maximum(spec.hold.sample_ms(rng, n), 0),
            np.maximum(spec.wrapup.sample_ms(rng, n), 0),
            spec.patience.sample_ms(rng, n),
            rng.random(n) < spec.transfer.share,
            rng.random(n) < self.tenant.repeat_share,
            rng.random(n),
            rng.integers(0, 1 << 48, n),
            rng.integers(0, len(DISPOSITIONS), n),
        )
        return list(zip(*(column.tolist() for column in columns)))


class _Call:
    __slots__ = ("call_id", "caller", "queue", "queued_ms", "state", "draw")

    def __init__(self, call_id: str, caller: str, queue: _Queue, queued_ms: int, draw: tuple) -> None:
        self.call_id = call_id
        self.caller = caller
        self.queue = queue
        self.queued_ms = queued_ms
        self.state = _WAITING
        self.draw = draw


class Simulation:
    """One run of ``scenario`` over ``[start_ms, start_ms + duration_ms)`` of event time.

    Arrivals stop at the end of the run; calls in progress are finished. Agents with a shift
    follow it (clipped to the run); agents without one are logged in from the start and leave
    once the run is over and no call waits for them.
    """

    def __init__(self, scenario: Scenario, *, start_ms: int, duration_ms: int, seed: int,
                 chunk_events: int = 8192) -> None:
        if duration_ms <= 0:
            raise ValueError("duration_ms must be > 0")
        self.start_ms = start_ms
        self.end_ms = start_ms + duration_ms
        self.chunk_events = chunk_events
        self.calls = 0
        self.events = 0
        self._heap: list[tuple] = []
        self._seq = 0
        self._ids = 0
        self._out: list[dict[str, Any]] = []
        self._agents = Workforce(self, start_ms=start_ms, end_ms=self.end_ms)
        seeds = np.random.SeedSequence(seed)
        arrival_times: list[np.ndarray] = []
        self._queues: list[_Queue] = []
        for tenant_spec in scenario.tenants:
            tenant = _Tenant(tenant_spec)
            by_name = {}
            for queue_spec in tenant_spec.queues:
                arrivals_seed, draws_seed = seeds.spawn(2)
                queue = _Queue(queue_spec, tenant, np.random.default_rng(draws_seed))
                by_name[queue.name] = queue
                self._queues.append(queue)
                arrival_times.append(self._arrivals(queue_spec, np.random.default_rng(arrivals_seed)))
            for queue in by_name.values():
                if queue.transfer_kind == "queue":
                    queue.target = by_name[queue.transfer_to]
            for group in tenant_spec.agents:
                self._agents.add_group(tenant.name, group, [by_name[s] for s in group.skills])
        times = np.concatenate(arrival_times) if arrival_times else np.empty(0, np.int64)
        which = np.repeat(np.arange(len(arrival_times)), [len(a) for a in arrival_times])
        order = np.argsort(times, kind="stable")
        self._arrival_ms: list[int] = times[order].tolist()
        self._arrival_queue: list[_Queue] = [self._queues[i] for i in which[order].tolist()]
        self.push(self.end_ms, _RUN_END, None, None)

    # -- set-up ------------------------------------------------------------------------------

    def _arrivals(self, spec: QueueSpec, rng: np.random.Generator) -> np.ndarray:
        """Poisson arrival times: a Poisson count per profile slot, uniform within it."""
        first = self.start_ms - self.start_ms % SLOT_MS
        slot_starts = np.arange(first, self.end_ms, SLOT_MS, dtype=np.int64)
        lows = np.maximum(slot_starts, self.start_ms)
        highs = np.minimum(slot_starts + SLOT_MS, self.end_ms)
        shares = np.asarray(spec.profile.shares)[(slot_starts % DAY_MS) // SLOT_MS]
        expected = spec.arrivals_per_day * shares * (highs - lows) / SLOT_MS
        counts = rng.poisson(expected)
        offsets = rng.random(int(counts.sum())) * np.repeat(highs - lows, counts)
        times = np.repeat(lows, counts) + offsets.astype(np.int64)
        times.sort()
        return times

    def push(self, ts_ms: int, kind: int, subject: Any, detail: Any) -> None:
        """Set a timer: at ``ts_ms`` the handler of ``kind`` gets ``subject`` and ``detail``."""
        self._seq += 1
        heapq.heappush(self._heap, (ts_ms, self._seq, kind, subject, detail))

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> Iterator[list[dict[str, Any]]]:
        """Yield the events in event-time order, in lists of about ``chunk_events``."""
        heap = self._heap
        arrival_ms, arrival_queue = self._arrival_ms, self._arrival_queue
        total = len(arrival_ms)
        i = 0
        chunk = self.chunk_events
        handlers = self._agents.timer_handlers() + (
            self._talk_end, self._wrapup_end, self._give_up, self._max_wait, self._run_end)
        while heap or i < total:
            if heap and (i >= total or heap[0][0] <= arrival_ms[i]):
                ts_ms, _, kind, subject, detail = heapq.heappop(heap)
                handlers[kind](ts_ms, subject, detail)
            else:
                self._arrive(arrival_ms[i], arrival_queue[i], None, None)
                i += 1
            if len(self._out) >= chunk:
                out, self._out = self._out, []
                self.events += len(out)
                yield out
        if self._out:
            out, self._out = self._out, []
            self.events += len(out)
            yield out

    # Event ids are "<tenant>-<n>" with one counter for the run: unique and reproducible.

    def _arrive(self, ts_ms: int, queue: _Queue, call_id: str | None, caller: str | None) -> None:
        draw = queue.draw()
        tenant = queue.tenant
        if call_id is None:  # a new call, not a transferred one
            self.calls += 1
            tenant.calls += 1
            call_id = f"c{tenant.calls}"
            callers = tenant.callers
            if draw[5] and callers:
                caller = callers[int(draw[6] * len(callers))]
            else:
                caller = "h:%012x" % draw[7]
                callers.append(caller)
        call = _Call(call_id, caller, queue, ts_ms, draw)
        name = tenant.name
        self._ids = n = self._ids + 1
        self._out.append({"event_id": f"{name}-{n}", "type": "call.queued", "ts_ms": ts_ms,
                          "tenant": name, "source": SOURCE, "call_id": call_id,
                          "queue": queue.name, "caller": caller, "position": queue.waiting_n + 1})
        if queue.staffed == 0:
            call.state = _LEFT
            self._call_left(ts_ms, call, "call.dequeued", "empty")
            return
        agent = queue.idle.pop()
        if agent is not None:
            self._answer(ts_ms, call, agent)
            return
        queue.waiting.append(call)
        queue.waiting_n += 1
        patience_ms, max_wait_ms = draw[3], queue.max_wait_ms
        if patience_ms >= 0 and (max_wait_ms < 0 or patience_ms < max_wait_ms):
            self._seq = seq = self._seq + 1
            heappush(self._heap, (ts_ms + patience_ms, seq, _GIVE_UP, call, None))
        elif max_wait_ms >= 0:
            self.push(ts_ms + max_wait_ms, _MAX_WAIT, call, None)

    def _answer(self, ts_ms: int, call: _Call, agent: Agent) -> None:
        call.state = _ANSWERED
        tenant = agent.tenant
        self._ids = n = self._ids + 1
        self._out.append({"event_id": f"{tenant}-{n}", "type": "call.answered", "ts_ms": ts_ms,
                          "tenant": tenant, "source": SOURCE, "call_id": call.call_id,
                          "queue": call.queue.name, "agent_id": agent.agent_id,
                          "wait_ms": ts_ms - call.queued_ms})
        self._agents.on_call(ts_ms, agent)
        draw = call.draw
        self._seq = seq = self._seq + 1
        heappush(self._heap, (ts_ms + draw[0] + draw[1], seq, _TALK_END, call, agent))

    def _call_left(self, ts_ms: int, call: _Call, event_type: str, reason: str | None) -> None:
        queue = call.queue
        tenant = queue.tenant.name
        self._ids = n = self._ids + 1
        event = {"event_id": f"{tenant}-{n}", "type": event_type, "ts_ms": ts_ms,
                 "tenant": tenant, "source": SOURCE, "call_id": call.call_id, "queue": queue.name,
                 "wait_ms": ts_ms - call.queued_ms}
        if reason is not None:
            event["reason"] = reason
        self._out.append(event)

    def _give_up(self, ts_ms: int, call: _Call, _: Any) -> None:
        if call.state == _WAITING:
            call.state = _LEFT
            call.queue.waiting_n -= 1
            self._call_left(ts_ms, call, "call.abandoned", None)

    def _max_wait(self, ts_ms: int, call: _Call, _: Any) -> None:
        if call.state == _WAITING:
            call.state = _LEFT
            call.queue.waiting_n -= 1
            self._call_left(ts_ms, call, "call.dequeued", "timeout")

    def _talk_end(self, ts_ms: int, call: _Call, agent: Agent) -> None:
        queue = call.queue
        tenant = agent.tenant
        draw = call.draw
        out = self._out
        transferred = draw[4] and queue.transfer_kind is not None
        if transferred:
            self._ids = n = self._ids + 1
            out.append({"event_id": f"{tenant}-{n}", "type": "call.transferred",
                        "ts_ms": ts_ms, "tenant": tenant, "source": SOURCE,
                        "call_id": call.call_id, "queue": queue.name,
                        "agent_id": agent.agent_id, "target": queue.transfer_to,
                        "kind": queue.transfer_kind})
        self._ids = n = self._ids + 1
        out.append({"event_id": f"{tenant}-{n}", "type": "call.ended", "ts_ms": ts_ms,
                    "tenant": tenant, "source": SOURCE, "call_id": call.call_id,
                    "queue": queue.name, "agent_id": agent.agent_id,
                    "talk_ms": draw[0], "hold_ms": draw[1]})
        acw_ms = draw[2]
        if acw_ms > 0:
            self._agents.wrapup(ts_ms, agent)
            self._seq = seq = self._seq + 1
            heappush(self._heap, (ts_ms + acw_ms, seq, _WRAPUP_END, call, agent))
        if transferred and queue.target is not None:
            self._arrive(ts_ms, queue.target, call.call_id, call.caller)
        if acw_ms == 0:
            self._wrapup_end(ts_ms, call, agent)

    def _wrapup_end(self, ts_ms: int, call: _Call, agent: Agent) -> None:
        draw = call.draw
        tenant = agent.tenant
        self._ids = n = self._ids + 1
        self._out.append({"event_id": f"{tenant}-{n}", "type": "call.wrapup_ended",
                          "ts_ms": ts_ms, "tenant": tenant, "source": SOURCE,
                          "call_id": call.call_id, "queue": call.queue.name,
                          "agent_id": agent.agent_id, "acw_ms": draw[2],
                          "disposition": DISPOSITIONS[draw[8]]})
        self._agents.call_done(ts_ms, agent)

    def _run_end(self, ts_ms: int, _: Any, __: Any) -> None:
        self._agents.end_of_run(ts_ms)

    # -- the agents' floor (streams.simulate.agents.Floor) -----------------------------------

    def new_event(self, event_type: str, ts_ms: int, tenant: str) -> dict[str, Any]:
        """Emit an event with its id and the common fields; the caller adds the rest. (The
        call events above write the same fields inline: they are the hot path.)"""
        self._ids = n = self._ids + 1
        event = {"event_id": f"{tenant}-{n}", "type": event_type, "ts_ms": ts_ms,
                 "tenant": tenant, "source": SOURCE}
        self._out.append(event)
        return event

    def longest_waiting(self, skills: list[_Queue]) -> _Call | None:
        """The call waiting longest in any of ``skills`` (ties: the first skill), or None."""
        best: _Call | None = None
        for queue in skills:
            waiting = queue.waiting
            while waiting and waiting[0].state != _WAITING:
                waiting.popleft()
            if waiting and (best is None or waiting[0].queued_ms < best.queued_ms):
                best = waiting[0]
        return best

    def answer_waiting(self, ts_ms: int, call: _Call, agent: Agent) -> None:
        """``agent`` takes ``call``, the one :meth:`longest_waiting` found."""
        call.queue.waiting.popleft()
        call.queue.waiting_n -= 1
        self._answer(ts_ms, call, agent)

    def unstaffed(self, ts_ms: int, queue: _Queue) -> None:
        """The last agent serving ``queue`` logged out: the ACD empties the queue."""
        for call in queue.waiting:
            if call.state == _WAITING:
                call.state = _LEFT
                self._call_left(ts_ms, call, "call.dequeued", "empty")
        queue.waiting.clear()
        queue.waiting_n = 0
