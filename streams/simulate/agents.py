"""The agents of the simulated contact center: who is logged in when, in which state, and
which agent takes a call.

An agent serves the queues of its skills. Agents with a shift log in and out with it (clipped
to the run) and take their breaks in waves, agent i in wave i mod ``break_waves``; agents
without a shift are logged in from the start and leave once the run is over and no call
waits for them. A break or the end of a shift that comes during a call is taken when the call
and its wrap-up are over. An agent who becomes free takes the longest-waiting call among its
skills if there is one, or else joins the idle pool of each of its queues, where an arriving
call finds the agent idle longest. Every change of state is an ``agent.state`` event.

The agents see the rest of the model only through :class:`Floor` (timers, the event output,
the waiting calls), which :class:`streams.simulate.model.Simulation` implements: the model
uses this module, never the reverse.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Protocol

from streams.simulate.profile import DAY_MS, AgentGroup

__all__ = ["Agent", "IdleAgents", "Skill", "Floor", "Workforce", "TIMER_KINDS"]

# The agents' timer kinds; the model numbers its own kinds from TIMER_KINDS on.
_SHIFT_START, _SHIFT_END, _BREAK_START, _BREAK_END = range(4)
TIMER_KINDS = 4


class Skill(Protocol):
    """A queue as the agents serving it see it (the model's queue)."""

    name: str
    staffed: int  # agents logged in with this skill
    idle: IdleAgents


class Floor(Protocol):
    """What the agents need from the rest of the model; model.Simulation is the one floor."""

    def push(self, ts_ms: int, kind: int, subject: Any, detail: Any) -> None:
        """Set a timer: at ``ts_ms`` the handler of ``kind`` gets ``subject`` and ``detail``."""

    def new_event(self, event_type: str, ts_ms: int, tenant: str) -> dict[str, Any]:
        """Emit an event with its id and the common fields; the caller adds the rest."""

    def longest_waiting(self, skills: list[Skill]) -> Any | None:
        """The call waiting longest in any of ``skills`` (ties: the first skill), or None."""

    def answer_waiting(self, ts_ms: int, call: Any, agent: Agent) -> None:
        """``agent`` takes ``call``, the one :meth:`longest_waiting` found."""

    def unstaffed(self, ts_ms: int, queue: Skill) -> None:
        """The last agent serving ``queue`` logged out: its waiting calls leave."""


class Agent:
    """One agent: its skills, and where it is in its day (moved along by :class:`Workforce`)."""

    __slots__ = ("agent_id", "tenant", "skills", "queue_names", "token", "logged_in", "busy",
                 "away", "leave_due", "break_due", "drain")

    def __init__(self, agent_id: str, tenant: str, skills: list[Skill]) -> None:
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


class IdleAgents:
    """The idle agents of one queue, the one idle longest first.

    An entry is ``(agent, token)``; it goes stale when the agent's token moves on (the agent
    took a call elsewhere, went away or logged out) and is skipped when popped.
    """

    __slots__ = ("_entries", "_limit")

    def __init__(self) -> None:
        self._entries: deque[tuple[Agent, int]] = deque()
        self._limit = 64

    def add(self, agent: Agent) -> None:
        """``agent`` is idle from now on, with its current token."""
        entries = self._entries
        entries.append((agent, agent.token))
        if len(entries) > self._limit:  # drop stale entries left by multi-skill agents
            self._entries = deque(e for e in entries if e[0].token == e[1])
            self._limit = max(64, 2 * len(self._entries))

    def pop(self) -> Agent | None:
        """The agent idle longest, taken out of the pool, or None when nobody is idle."""
        entries = self._entries
        while entries:
            agent, token = entries.popleft()
            if agent.token == token:
                return agent
        return None


class Workforce:
    """The agents of one run over ``[start_ms, end_ms)`` and what they do, on ``floor``."""

    def __init__(self, floor: Floor, *, start_ms: int, end_ms: int) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        self._floor = floor
        self._agents: list[Agent] = []
        self._numbers: dict[str, int] = {}

    def add_group(self, tenant: str, group: AgentGroup, skills: list[Skill]) -> None:
        """Hire ``group`` (agents ``a-1001``, ``a-1002``, ... per tenant) and set the timers of
        its shifts and breaks."""
        push = self._floor.push
        for _ in range(group.count):
            number = self._numbers[tenant] = self._numbers.get(tenant, 0) + 1
            agent = Agent(f"a-{1000 + number}", tenant, skills)
            wave = (number - 1) % group.break_waves
            self._agents.append(agent)
            if group.shift_s is None:
                push(self.start_ms, _SHIFT_START, agent, None)
                continue
            first_day = self.start_ms - self.start_ms % DAY_MS
            for day in range(first_day, self.end_ms, DAY_MS):
                login = max(day + group.shift_s[0] * 1000, self.start_ms)
                logout = min(day + group.shift_s[1] * 1000, self.end_ms)
                if login >= logout:
                    continue
                push(login, _SHIFT_START, agent, None)
                for pause in group.breaks:
                    at = day + (pause.at_s + wave * group.break_stagger_s) * 1000
                    if login < at < logout:
                        push(at, _BREAK_START, agent, (pause.duration_s * 1000, pause.reason))
                push(logout, _SHIFT_END, agent, "shift_end")

    def timer_handlers(self) -> tuple[Callable[[int, Any, Any], None], ...]:
        """The handlers of the agents' timer kinds, indexed by kind."""
        return (self._shift_start, self._shift_end, self._break_start, self._break_end)

    # -- calls -------------------------------------------------------------------------------

    def on_call(self, ts_ms: int, agent: Agent) -> None:
        """``agent`` answered a call."""
        agent.token += 1
        agent.busy = True
        self._state(ts_ms, agent, "on_call")

    def wrapup(self, ts_ms: int, agent: Agent) -> None:
        """``agent``'s call ended and its wrap-up begins."""
        self._state(ts_ms, agent, "wrapup")

    def call_done(self, ts_ms: int, agent: Agent) -> None:
        """``agent`` is through with its call, wrap-up included."""
        agent.busy = False
        self._free(ts_ms, agent)

    def end_of_run(self, ts_ms: int) -> None:
        """The run is over: idle agents log out, the others once no call waits for them."""
        for agent in self._agents:
            if agent.logged_in:
                agent.drain = True
                if not agent.busy and not agent.away:
                    self._logout(ts_ms, agent, "end_of_run")

    # -- states ------------------------------------------------------------------------------

    def _state(self, ts_ms: int, agent: Agent, state: str, reason: str | None = None) -> None:
        event = self._floor.new_event("agent.state", ts_ms, agent.tenant)
        event["agent_id"] = agent.agent_id
        event["state"] = state
        event["queues"] = agent.queue_names
        if reason is not None:
            event["reason"] = reason

    def _free(self, ts_ms: int, agent: Agent) -> None:
        """The agent can take calls again (login, end of a call or of a break)."""
        if agent.leave_due:
            self._logout(ts_ms, agent, "shift_end")
            return
        if agent.break_due is not None:
            self._start_break(ts_ms, agent, agent.break_due)
            return
        floor = self._floor
        call = floor.longest_waiting(agent.skills)
        if call is None and agent.drain:
            self._logout(ts_ms, agent, "end_of_run")
            return
        self._state(ts_ms, agent, "available")
        if call is not None:
            floor.answer_waiting(ts_ms, call, agent)
            return
        agent.token += 1
        for queue in agent.skills:
            queue.idle.add(agent)

    def _shift_start(self, ts_ms: int, agent: Agent, _: Any) -> None:
        if agent.logged_in:
            return
        agent.logged_in = True
        agent.leave_due = False
        for queue in agent.skills:
            queue.staffed += 1
        self._free(ts_ms, agent)

    def _shift_end(self, ts_ms: int, agent: Agent, reason: str) -> None:
        if not agent.logged_in:
            return
        if agent.busy:
            agent.leave_due = True
        else:
            self._logout(ts_ms, agent, reason)

    def _logout(self, ts_ms: int, agent: Agent, reason: str) -> None:
        agent.token += 1
        agent.logged_in = agent.away = agent.leave_due = False
        agent.break_due = None
        self._state(ts_ms, agent, "logged_out", reason)
        for queue in agent.skills:
            queue.staffed -= 1
            if queue.staffed == 0:
                self._floor.unstaffed(ts_ms, queue)

    def _break_start(self, ts_ms: int, agent: Agent, pause: tuple[int, str]) -> None:
        if not agent.logged_in or agent.away:
            return
        if agent.busy:
            agent.break_due = pause  # taken after the current call
        else:
            self._start_break(ts_ms, agent, pause)

    def _start_break(self, ts_ms: int, agent: Agent, pause: tuple[int, str]) -> None:
        agent.token += 1
        agent.break_due = None
        agent.away = True
        self._state(ts_ms, agent, "away", pause[1])
        self._floor.push(ts_ms + pause[0], _BREAK_END, agent, None)

    def _break_end(self, ts_ms: int, agent: Agent, _: Any) -> None:
        if agent.logged_in and agent.away:
            agent.away = False
            self._free(ts_ms, agent)
