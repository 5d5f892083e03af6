"""The discrete-event model of a contact center (M(t)/G/n+G) that emits contract-v1 events.

Per queue, calls arrive as a Poisson process whose rate is constant within each 15-minute
slot of the intraday profile; every call draws its talk, hold and wrap-up times and its
patience when it arrives. Calls wait first-come-first-served per queue; a free agent takes
the longest-waiting call among its skills (ties: the skill listed first), and a call that
finds several free agents goes to the one idle longest. A waiting call leaves when its
patience runs out (``call.abandoned``), when the queue's maximum wait runs out
(``call.dequeued``, reason ``timeout``) or when the last agent serving the queue logs out
(``call.dequeued``, reason ``empty``).

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

from streams.simulate.profile import DAY_MS, SLOT_MS, AgentGroup, QueueSpec, Scenario, TenantSpec

__all__ = ["Simulation", "SOURCE", "DRAW_BLOCK"]

SOURCE = "callslo-simulate"
DRAW_BLOCK = 4096
DISPOSITIONS = ("resolved", "resolved", "resolved", "follow_up", "escalated")

# Timer kinds, in the heap as (ts_ms, sequence, kind, subject, detail).
_SHIFT_START, _SHIFT_END, _BREAK_START, _BREAK_END, _TALK_END, _WRAPUP_END, _GIVE_UP, _MAX_WAIT, \
    _RUN_END = range(9)
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
                 "idle", "idle_limit", "staffed", "max_wait_ms", "transfer_to", "transfer_kind",
                 "target")

    def __init__(self, spec: QueueSpec, tenant: _Tenant, rng: np.random.Generator) -> None:
        self.name = spec.name
        self.tenant = tenant
        self.spec = spec
        self.rng = rng
        self.draws: list[tuple] = []
        self.next_draw = 0
        self.waiting: deque[_Call] = deque()  # may hold calls that already left (skipped lazily)
        self.waiting_n = 0
        self.idle: deque[tuple[_Agent, int]] = deque()  # (agent, token); stale when tokens differ
        self.idle_limit = 64
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


class _Agent:
    __slots__ = ("agent_id", "tenant", "skills", "queue_names", "token", "logged_in", "busy",
                 "away", "leave_due", "break_due", "drain")

    def __init__(self, agent_id: str, tenant: str, skills: list[_Queue]) -> None:
        self.agent_id = agent_id
        self.tenant = tenant
        self.skills = skills
        self.queue_names = [q.name for q in skills]
        self.token = 0  # bumped whenever the agent stops being idle
        self.logged_in = False
        self.busy = False
        self.away = False
        self.leave_due = False
        self.break_due: tuple[int, str] | None = None
        self.drain = False  # run over: leave as soon as no call waits for this agent


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
        self._agents: list[_Agent] = []
        self._agent_numbers: dict[str, int] = {}
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
                self._add_group(tenant.name, group, [by_name[s] for s in group.skills])
        times = np.concatenate(arrival_times) if arrival_times else np.empty(0, np.int64)
        which = np.repeat(np.arange(len(arrival_times)), [len(a) for a in arrival_times])
        order = np.argsort(times, kind="stable")
        self._arrival_ms: list[int] = times[order].tolist()
        self._arrival_queue: list[_Queue] = [self._queues[i] for i in which[order].tolist()]
        self._push(self.end_ms, _RUN_END, None, None)

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

    def _add_group(self, tenant: str, group: AgentGroup, skills: list[_Queue]) -> None:
        for _ in range(group.count):
            number = self._agent_numbers[tenant] = self._agent_numbers.get(tenant, 0) + 1
            agent = _Agent(f"a-{1000 + number}", tenant, skills)
            wave = (number - 1) % group.break_waves
            self._agents.append(agent)
            if group.shift_s is None:
                self._push(self.start_ms, _SHIFT_START, agent, None)
                continue
            first_day = self.start_ms - self.start_ms % DAY_MS
            for day in range(first_day, self.end_ms, DAY_MS):
                login = max(day + group.shift_s[0] * 1000, self.start_ms)
                logout = min(day + group.shift_s[1] * 1000, self.end_ms)
                if login >= logout:
                    continue
                self._push(login, _SHIFT_START, agent, None)
                for pause in group.breaks:
                    at = day + (pause.at_s + wave * group.break_stagger_s) * 1000
                    if login < at < logout:
                        self._push(at, _BREAK_START, agent, (pause.duration_s * 1000, pause.reason))
                self._push(logout, _SHIFT_END, agent, "shift_end")

    def _push(self, ts_ms: int, kind: int, subject: Any, detail: Any) -> None:
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
        handlers = (self._shift_start, self._shift_end, self._break_start, self._break_end,
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

    def _agent_event(self, ts_ms: int, agent: _Agent, state: str) -> None:
        self._ids = n = self._ids + 1
        self._out.append({"event_id": f"{agent.tenant}-{n}", "type": "agent.state", "ts_ms": ts_ms,
                          "tenant": agent.tenant, "source": SOURCE, "agent_id": agent.agent_id,
                          "state": state, "queues": agent.queue_names})

    def _agent_event_why(self, ts_ms: int, agent: _Agent, state: str, reason: str) -> None:
        self._agent_event(ts_ms, agent, state)
        self._out[-1]["reason"] = reason

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
        idle = queue.idle
        while idle:
            agent, token = idle.popleft()
            if agent.token == token:
                self._answer(ts_ms, call, agent)
                return
        queue.waiting.append(call)
        queue.waiting_n += 1
        patience_ms, max_wait_ms = draw[3], queue.max_wait_ms
        if patience_ms >= 0 and (max_wait_ms < 0 or patience_ms < max_wait_ms):
            self._seq = seq = self._seq + 1
            heappush(self._heap, (ts_ms + patience_ms, seq, _GIVE_UP, call, None))
        elif max_wait_ms >= 0:
            self._push(ts_ms + max_wait_ms, _MAX_WAIT, call, None)

    def _answer(self, ts_ms: int, call: _Call, agent: _Agent) -> None:
        call.state = _ANSWERED
        agent.token += 1
        agent.busy = True
        queue = call.queue
        tenant = agent.tenant
        out = self._out
        self._ids = n = self._ids + 2
        out.append({"event_id": f"{tenant}-{n - 1}", "type": "call.answered", "ts_ms": ts_ms,
                    "tenant": tenant, "source": SOURCE, "call_id": call.call_id,
                    "queue": queue.name, "agent_id": agent.agent_id,
                    "wait_ms": ts_ms - call.queued_ms})
        out.append({"event_id": f"{tenant}-{n}", "type": "agent.state", "ts_ms": ts_ms,
                    "tenant": tenant, "source": SOURCE, "agent_id": agent.agent_id,
                    "state": "on_call", "queues": agent.queue_names})
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

    def _talk_end(self, ts_ms: int, call: _Call, agent: _Agent) -> None:
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
            self._agent_event(ts_ms, agent, "wrapup")
            self._seq = seq = self._seq + 1
            heappush(self._heap, (ts_ms + acw_ms, seq, _WRAPUP_END, call, agent))
        if transferred and queue.target is not None:
            self._arrive(ts_ms, queue.target, call.call_id, call.caller)
        if acw_ms == 0:
            self._wrapup_end(ts_ms, call, agent)

    def _wrapup_end(self, ts_ms: int, call: _Call, agent: _Agent) -> None:
        draw = call.draw
        tenant = agent.tenant
        self._ids = n = self._ids + 1
        self._out.append({"event_id": f"{tenant}-{n}", "type": "call.wrapup_ended",
                          "ts_ms": ts_ms, "tenant": tenant, "source": SOURCE,
                          "call_id": call.call_id, "queue": call.queue.name,
                          "agent_id": agent.agent_id, "acw_ms": draw[2],
                          "disposition": DISPOSITIONS[draw[8]]})
        agent.busy = False
        self._free(ts_ms, agent)

    # -- agents ------------------------------------------------------------------------------

    def _free(self, ts_ms: int, agent: _Agent) -> None:
        """The agent can take calls again (login, end of a call or of a break)."""
        if agent.leave_due:
            self._logout(ts_ms, agent, "shift_end")
            return
        if agent.break_due is not None:
            self._start_break(ts_ms, agent, agent.break_due)
            return
        best: _Call | None = None
        for queue in agent.skills:
            waiting = queue.waiting
            while waiting and waiting[0].state != _WAITING:
                waiting.popleft()
            if waiting and (best is None or waiting[0].queued_ms < best.queued_ms):
                best = waiting[0]
        if best is None and agent.drain:
            self._logout(ts_ms, agent, "end_of_run")
            return
        self._agent_event(ts_ms, agent, "available")
        if best is not None:
            best.queue.waiting.popleft()
            best.queue.waiting_n -= 1
            self._answer(ts_ms, best, agent)
            return
        agent.token += 1
        entry = (agent, agent.token)
        for queue in agent.skills:
            idle = queue.idle
            idle.append(entry)
            if len(idle) > queue.idle_limit:  # drop stale entries left by multi-skill agents
                queue.idle = deque(e for e in idle if e[0].token == e[1])
                queue.idle_limit = max(64, 2 * len(queue.idle))

    def _idle(self, agent: _Agent) -> bool:
        return agent.logged_in and not agent.busy and not agent.away

    def _shift_start(self, ts_ms: int, agent: _Agent, _: Any) -> None:
        if agent.logged_in:
            return
        agent.logged_in = True
        agent.leave_due = False
        for queue in agent.skills:
            queue.staffed += 1
        self._free(ts_ms, agent)

    def _shift_end(self, ts_ms: int, agent: _Agent, reason: str) -> None:
        if not agent.logged_in:
            return
        if agent.busy:
            agent.leave_due = True
        else:
            self._logout(ts_ms, agent, reason)

    def _run_end(self, ts_ms: int, _: Any, __: Any) -> None:
        for agent in self._agents:
            if agent.logged_in:
                agent.drain = True
                if self._idle(agent):
                    self._logout(ts_ms, agent, "end_of_run")

    def _logout(self, ts_ms: int, agent: _Agent, reason: str) -> None:
        agent.token += 1
        agent.logged_in = agent.away = agent.leave_due = False
        agent.break_due = None
        self._agent_event_why(ts_ms, agent, "logged_out", reason)
        for queue in agent.skills:
            queue.staffed -= 1
            if queue.staffed == 0:  # nobody left to answer: the ACD empties the queue
                for call in queue.waiting:
                    if call.state == _WAITING:
                        call.state = _LEFT
                        self._call_left(ts_ms, call, "call.dequeued", "empty")
                queue.waiting.clear()
                queue.waiting_n = 0

    def _break_start(self, ts_ms: int, agent: _Agent, pause: tuple[int, str]) -> None:
        if not agent.logged_in or agent.away:
            return
        if agent.busy:
            agent.break_due = pause  # taken after the current call
        else:
            self._start_break(ts_ms, agent, pause)

    def _start_break(self, ts_ms: int, agent: _Agent, pause: tuple[int, str]) -> None:
        agent.token += 1
        agent.break_due = None
        agent.away = True
        self._agent_event_why(ts_ms, agent, "away", pause[1])
        self._push(ts_ms + pause[0], _BREAK_END, agent, None)

    def _break_end(self, ts_ms: int, agent: _Agent, _: Any) -> None:
        if agent.logged_in and agent.away:
            agent.away = False
            self._free(ts_ms, agent)
